"""Specs of the seeds' runs, as a user would write them."""
import pytest

from tests.specs import typed

# The inputs of the seeds' 4-card Llama3-8B run whose MindFormers config is
# fixtures/mindformers-logs/finetune_config_run1.yaml.
RUN1 = {
    "model": {"family": "llama3-8b", "checkpoint": "/home/ma-user/work/llama3-8B.ckpt"},
    "data": {"seqLength": 256},
    "lora": {"rank": 8, "alpha": 16, "dropout": 0.05, "targetModules": ["wq", "wv", "wk"]},
    "training": {"epochs": 5, "batchSize": 64, "sinkMode": True, "sinkSize": 2, "seed": 0,
                 "maxDeviceMemory": "26GB", "checkpoint": {"everyEpoch": False, "saveSteps": 535}},
    "resources": {"npusPerNode": 4, "nodes": 1,
                  "parallel": {"dataParallel": 1, "modelParallel": 4, "pipelineStage": 1, "microBatchNum": 1}},
}


@pytest.fixture
def run1_spec():
    return typed(RUN1)


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path, monkeypatch):
    # MindFormers writes output/ (logs, adapter_config.json) under the working directory.
    monkeypatch.chdir(tmp_path)
