"""A tiny MindRecord (MindFormers' qa schema) and a CPU-profile run spec, for real training on CPU.

Until the tokenize stage's own output is used here, the shards are written
the way it writes them: input_ids/labels int32, seq_length + 1 per row,
labels -100 over the prompt and the padding.
"""
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import pytest
import yaml

from tests import stage_result
from tests.specs import whole

SEQ = 32
ROWS = 64

SPEC = {
    "profile": "cpu",
    "model": {"family": "tiny-llama", "tiny": {"numLayers": 2, "hiddenSize": 64, "numHeads": 4, "vocabSize": 512}},
    "data": {"seqLength": SEQ},
    "lora": {"rank": 8, "alpha": 16, "dropout": 0.0, "targetModules": ["wq", "wv"]},
    "training": {"epochs": 2, "batchSize": 4, "lrSchedule": {"learningRate": 0.005}},
    "resources": {"npusPerNode": 2, "nodes": 1,
                  "parallel": {"dataParallel": 2, "modelParallel": 1, "pipelineStage": 1, "microBatchNum": 1}},
}


def write_mindrecord(directory: Path, rows: int = ROWS, seq: int = SEQ) -> Path:
    from mindspore.mindrecord import FileWriter

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "train.mindrecord"
    writer = FileWriter(str(path), shard_num=1, overwrite=True)
    writer.add_schema({"input_ids": {"type": "int32", "shape": [-1]},
                       "labels": {"type": "int32", "shape": [-1]}}, "qa")
    samples = []
    for i in range(rows):
        ids = np.zeros(seq + 1, np.int32)
        n = 20
        ids[0] = 1  # BOS
        ids[1:n + 1] = (np.arange(n) * (i % 7 + 1) + i) % 500 + 3  # a learnable pattern per row
        labels = ids.copy()
        labels[:5] = -100       # the "prompt"
        labels[n + 1:] = -100   # padding
        samples.append({"input_ids": ids, "labels": labels})
    writer.write_raw_data(samples)
    writer.commit()
    return path


def published_checkpoints(run_dir: Path) -> dict:
    """{epoch: {rank: file}} as train published them (its manifest), which is
    what merge reads."""
    manifest = json.loads((run_dir / "train" / "manifest.json").read_text())
    return {int(e): {int(r): run_dir / "train" / f for r, f in ranks.items()}
            for e, ranks in manifest["outputs"]["checkpoints"].items()}


def write_spec(path: Path, **overrides) -> Path:
    spec = json.loads(json.dumps(SPEC))
    for key, value in overrides.items():
        spec[key] = {**spec.get(key, {}), **value}
    path.write_text(yaml.safe_dump({"apiVersion": "mathtune.dev/v1alpha1", "kind": "MathFinetune",
                                    "metadata": {"name": "t"}, "spec": whole(spec)}))
    return path


def run_stage(stage: str, spec: Path, run_dir: Path, *extra: str,
              cwd: Optional[Path] = None) -> subprocess.CompletedProcess:
    """The stage exactly as a Job runs it: the console entry point in a fresh process."""
    return subprocess.run([sys.executable, "-m", "mathtune_pipeline.cli", stage, "--spec", str(spec),
                           "--run-dir", str(run_dir), *extra], capture_output=True, text=True, timeout=900, cwd=cwd)


def last_json(stdout: str) -> dict:
    """The stage's result (its last stdout line), held to the stage-result contract."""
    return stage_result.check(json.loads(stdout.strip().splitlines()[-1]))


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """One real 2-rank CPU training run (2 epochs), shared by the train and merge tests."""
    run_dir = tmp_path_factory.mktemp("run")
    write_mindrecord(run_dir / "tokenize")
    spec = write_spec(run_dir / "run.yaml")
    proc = run_stage("train", spec, run_dir)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return run_dir, spec, proc


@pytest.fixture(scope="module")
def laid_out(tmp_path_factory, real_fixtures):
    """(run dir, spec file, merged checkpoint, base checkpoint) as the stages
    before evaluate leave them, without training: the tiny base model saved by
    MindSpore, train's rendered config, merge's manifest naming a merged
    checkpoint (the base weights: a model with no LoRA)."""
    from mathtune_pipeline.mindformers import base_model
    from mathtune_pipeline.mindformers import model as mf_model
    from mathtune_pipeline.spec import load_spec
    from mathtune_pipeline.stages import demo_data, train

    from .test_scoring_stages_cpu import _tokenizer

    root = tmp_path_factory.mktemp("bad-ckpt")
    run_dir = root / "run"
    squad_file = root / "squad.jsonl"
    demo_data.write_squad_small(squad_file)
    spec_file = write_spec(
        root / "run.yaml",
        model={"tokenizer": {"uri": str(_tokenizer(root / "tokenizer.json")), "format": "hf-json"}},
        evaluation={"dataset": {"uri": str(squad_file), "format": "squad-jsonl"}, "maxSamples": 2,
                    "maxNewTokens": 2, "baseScores": {"f1": 1.0, "em": 1.0}},
        prediction={"dataset": {"uri": str(real_fixtures / "contest" / "data_200_random.jsonl"),
                                "format": "contest-jsonl"}, "maxSamples": 2, "maxNewTokens": 2})
    spec, _ = load_spec(spec_file)
    base = base_model.ensure(spec, run_dir)
    plan = train.plan(spec, run_dir, ROWS, base)
    mf_model.write_config(plan["config"], run_dir / "train" / "finetune.yaml")
    merged = run_dir / "merge" / "epoch_1" / "merged.ckpt"
    merged.parent.mkdir(parents=True)
    shutil.copyfile(base, merged)
    (run_dir / "merge" / "manifest.json").write_text(json.dumps(
        {"stage": "merge", "outputs": {"epochs": {"1": {"merged": "merge/epoch_1/merged.ckpt"}}}}))
    return run_dir, spec_file, merged, base
