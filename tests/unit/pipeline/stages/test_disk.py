"""The work volume a run needs, and the checks that say so before it runs out."""
import shutil

from mathtune_pipeline import disk
from tests.specs import typed
from mathtune_pipeline.stages import train

SEED000 = {
    "model": {"family": "llama3-8b", "checkpoint": "/data/models/llama3-8B.ckpt"},
    "data": {"seqLength": 512},
    "lora": {"rank": 8, "alpha": 16, "targetModules": ["wq", "wv"]},
    "training": {"epochs": 5, "batchSize": 32},
    "resources": {"npusPerNode": 4, "nodes": 1,
                  "parallel": {"dataParallel": 1, "modelParallel": 4, "pipelineStage": 1, "microBatchNum": 1}},
}


def test_seed000s_run_needs_about_190_gb():
    parts = disk.for_spec(typed(SEED000), rows=97450)
    model = parts["base"]
    assert 16.0e9 < model < 16.1e9  # 8.03e9 bfloat16 parameters
    assert parts["train"] > 5 * model and parts["train"] < 5 * model * 1.02  # five saves, one copy over 4 ranks
    assert parts["merge"] > 6 * model and parts["merge"] < 6 * model * 1.02  # five merged + one reassembled
    assert parts["tokenize"] == 97450 * 513 * 8
    assert 185e9 < parts["total"] < 200e9
    assert parts["total"] == sum(v for k, v in parts.items() if k != "total")


def test_data_parallel_saves_a_whole_copy_per_replica():
    spec = typed({**SEED000, "resources": {"npusPerNode": 4, "nodes": 1, "parallel": {
        "dataParallel": 4, "modelParallel": 1, "pipelineStage": 1, "microBatchNum": 1}}})
    parts = disk.for_spec(spec, rows=97450)
    assert parts["train"] > 20 * parts["base"]
    assert parts["merge"] < 5.01 * parts["base"]  # no reassembly without model parallelism


def test_shortfall_names_what_and_how_much(tmp_path):
    free = shutil.disk_usage(tmp_path).free
    assert disk.shortfall(tmp_path / "not-yet" / "there", 1, "x") is None
    message = disk.shortfall(tmp_path / "merge", free + 2**30, "the merged checkpoints")
    assert "the merged checkpoints" in message and "GiB free" in message and str(tmp_path / "merge") in message


def test_train_warns_when_its_saves_will_not_fit(tmp_path, capsys):
    base = tmp_path / "base.ckpt"
    with open(base, "wb") as f:  # a sparse file the size of the free space: a model that cannot be saved twice
        f.truncate(shutil.disk_usage(tmp_path).free)
    spec = typed(SEED000)
    plan = {"config": {"load_checkpoint": str(base)}, "ranks": 4, "trainable": 3_407_872}
    train.warn_if_short(spec, plan, tmp_path / "train.work")
    out = capsys.readouterr().out
    assert "WARNING" in out and "spec.storage.size" in out and "5 saved epochs" in out
    base.write_bytes(b"x" * 1024)
    train.warn_if_short(spec, plan, tmp_path / "train.work")
    assert capsys.readouterr().out == ""
