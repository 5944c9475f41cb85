"""A truncated or damaged checkpoint is bad input at every stage that loads one
(train's base, evaluate's and predict's candidates): exit 2 naming the file,
before any model is built or msrun started, and nothing earlier touched.

The run directory is laid out as the earlier stages leave it, without
training (conftest.laid_out).
"""
import json
import shutil

import pytest

from tests import stage_result

from .conftest import run_stage, write_mindrecord, write_spec

pytestmark = pytest.mark.mindspore


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    return path.read_bytes()


def _bad_input(proc, path):
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-3000:]
    error = stage_result.check(json.loads(proc.stdout.strip().splitlines()[-1]))["error"]
    assert str(path) in error and "checkpoint" in error, error
    return error


@pytest.mark.parametrize("stage", ["evaluate", "predict"])
def test_a_truncated_merged_checkpoint(laid_out, stage):
    run_dir, spec_file, merged, _ = laid_out
    good = merged.read_bytes()
    try:
        kept = _truncate(merged)
        error = _bad_input(run_stage(stage, spec_file, run_dir), merged)
        assert "truncated" in error
        assert merged.read_bytes() == kept  # merge's output left as it was
        assert not (run_dir / stage).exists()
    finally:
        merged.write_bytes(good)


def test_a_truncated_base_checkpoint_at_predict(laid_out, tmp_path):
    run_dir, spec_file, _, base = laid_out
    given = tmp_path / "base.ckpt"
    shutil.copyfile(base, given)
    kept = _truncate(given)
    doc = json.loads(json.dumps(__import__("yaml").safe_load(spec_file.read_text())))
    doc["spec"]["model"]["checkpoint"] = str(given)
    spec = tmp_path / "given.yaml"
    spec.write_text(json.dumps(doc))
    _bad_input(run_stage("predict", spec, run_dir), given)
    assert given.read_bytes() == kept and not (run_dir / "predict").exists()


def test_a_checkpoint_of_another_model_names_what_is_missing(laid_out):
    run_dir, spec_file, merged, _ = laid_out
    good = merged.read_bytes()
    try:
        import mindspore as ms
        import numpy as np

        ms.save_checkpoint([{"name": "something.else", "data": ms.Tensor(np.ones(3, np.float32))}], str(merged))
        kept = merged.read_bytes()
        error = _bad_input(run_stage("evaluate", spec_file, run_dir), merged)
        assert f"{merged}: a checkpoint of this model; it lacks weights the model needs: " in error, error
        assert "model.tok_embeddings.embedding_weight" in error, error
        assert merged.read_bytes() == kept
    finally:
        merged.chmod(0o644)
        merged.write_bytes(good)


def test_a_truncated_base_checkpoint_at_train(tmp_path, laid_out):
    _, _, _, base = laid_out
    run_dir = tmp_path / "run"
    shard = write_mindrecord(run_dir / "tokenize")
    shard_bytes = shard.read_bytes()
    given = tmp_path / "base.ckpt"
    shutil.copyfile(base, given)
    kept = _truncate(given)
    spec = write_spec(tmp_path / "run.yaml", model={"checkpoint": str(given)})
    proc = run_stage("train", spec, run_dir)
    _bad_input(proc, given)
    assert "msrun" not in proc.stdout  # failed before starting the workers
    assert given.read_bytes() == kept and shard.read_bytes() == shard_bytes
    assert not (run_dir / "train").exists()
