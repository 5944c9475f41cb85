"""Each seed example renders the seed's own settings (the five contest reports).

The rendered MindFormers config is in the seeds' vocabulary (r1.1), so it
reads like their configs; the data recipe is checked on the spec."""
from pathlib import Path

import pytest
import yaml

from mathtune_pipeline.mindformers import render
from tests.specs import typed

REPO = Path(__file__).resolve().parents[4]

# Per seed: what its report says, in MindFormers' terms.
SEEDS = {
    "seed000-llama3-quota-cot": {
        "template": "vicuna", "dedupe": True, "seq": 512,
        "pet": {"lora_rank": 8, "lora_alpha": 16, "lora_dropout": 0.05, "target_modules": ".*wq|.*wv"},
        "runner": {"epochs": 5, "batch_size": 32, "sink_mode": True},
        "optimizer": {"beta1": 0.9, "beta2": 0.95, "eps": 1e-8},
        "parallel": {"data_parallel": 1, "model_parallel": 4},
        "scale_sense": 1.0,
    },
    "seed001-llama3-counts": {
        "template": "alpaca", "dedupe": False, "seq": 512,
        "pet": {"lora_rank": 8, "lora_alpha": 16, "lora_dropout": 0.0, "target_modules": ".*wq|.*wv"},
        "runner": {"epochs": 6, "batch_size": 64, "sink_mode": True, "sink_size": 2},
        "optimizer": {"beta1": 0.9, "beta2": 0.95, "eps": 1e-8, "weight_decay": 0.01},
        "lr": {"type": "CosineWithWarmUpLR", "learning_rate": 3e-5, "lr_end": 1e-6, "warmup_ratio": 0.03},
        "parallel": {"data_parallel": 1, "model_parallel": 4},
        "scale_sense": 1.0,
    },
    "seed002-internlm-mmlu-choice": {
        "template": "multiple-choice", "seq": 128,
        "pet": {"lora_rank": 8, "lora_alpha": 16, "target_modules": ".*wq|.*wk|.*wv|.*wo"},
        "runner": {"epochs": 10, "batch_size": 4},
        "optimizer": {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.01},
        "lr": {"learning_rate": 5e-5, "warmup_ratio": 0.03},
        "parallel": {"data_parallel": 4, "model_parallel": 1},
        "scale_sense": "DynamicLossScaleUpdateCell",
    },
    "seed003-llama3-fraction": {
        "template": "alpaca", "dedupe": False, "fraction": 0.1,
        "pet": {"lora_rank": 8, "lora_alpha": 16, "lora_dropout": 0.05, "target_modules": ".*wq|.*wv"},
        "max_device_memory": "26GB",
        "scale_sense": 1.0,
    },
    "seed004-llama7b-belle-vicuna": {
        "template": "vicuna", "seq": 2048,
        "pet": {"lora_rank": 16, "lora_alpha": 16, "target_modules": ".*wq|.*wk|.*wv|.*wo"},
        "optimizer": {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
        "lr": {"learning_rate": 1e-5, "warmup_ratio": 0.03},
        "scale_sense": "DynamicLossScaleUpdateCell",
    },
}


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_the_example_renders_the_seeds_settings(name):
    want = SEEDS[name]
    spec = typed(yaml.safe_load((REPO / "examples" / f"{name}.yaml").read_text())["spec"])
    seq = spec.data.seq_length if isinstance(spec.data.seq_length, int) else 128
    config = render.finetune_config(spec, dataset_dir="d", load_checkpoint="c", save_checkpoint_steps=1,
                                    seq_length=seq)
    data = spec.data.wire()
    assert data["template"]["name"] == want["template"]
    if "dedupe" in want:
        assert data["dedupe"] is want["dedupe"]
    if "fraction" in want:
        assert data["sample"] == {**data["sample"], "mode": "fraction", "fraction": want["fraction"]}
    if "seq" in want:
        assert config["model"]["model_config"]["seq_length"] == want["seq"]
    pet = config["model"]["model_config"]["pet_config"]
    assert {k: pet[k] for k in want["pet"]} == want["pet"]
    for key, section in (("runner", "runner_config"), ("optimizer", "optimizer"), ("lr", "lr_schedule"),
                         ("parallel", "parallel_config")):
        if key in want:
            assert {k: config[section][k] for k in want[key]} == want[key], section
    if "max_device_memory" in want:
        assert config["context"]["max_device_memory"] == want["max_device_memory"]
    scale = config["runner_wrapper"]["scale_sense"]
    assert (scale if isinstance(scale, float) else scale["type"]) == want["scale_sense"]
