"""train on CPU for real: msrun, 2 data-parallel ranks, MindFormers' Trainer, checkpoints each epoch."""
import json
from pathlib import Path

import numpy as np
import pytest

from mathtune_pipeline.mindformers import checkpoint_io
from mathtune_pipeline.spec import load_spec
from mathtune_pipeline.stages import train

from .conftest import last_json, published_checkpoints, run_stage, write_mindrecord, write_spec

pytestmark = pytest.mark.mindspore


def _spec_of(path):
    return load_spec(str(path))[0]


def _ckpt(run_dir, epoch, rank):
    return published_checkpoints(run_dir)[epoch][rank]


def test_trains_both_ranks_and_saves_every_epoch(trained):
    run_dir, _, proc = trained
    result = last_json(proc.stdout)
    assert result["ok"] and result["checkpoints"] == [1, 2] and result["ranks"] == 2
    assert result["stepsPerEpoch"] == 8 and result["steps"] == 16   # 64 rows / 2 ranks / batch 4
    assert result["trainableParams"] == 2 * 2 * 8 * (64 + 64)       # 2 layers x (wq, wv) x r(in + out)
    manifest = json.loads((run_dir / "train" / "manifest.json").read_text())
    assert set(manifest["outputs"]["checkpoints"]) == {"1", "2"}
    assert not (run_dir / "train.work").exists()


def test_ranks_stay_identical_data_parallel(trained):
    """Gradients are all-reduced: both ranks hold the same LoRA weights after each epoch."""
    run_dir, _, _ = trained
    for epoch in (1, 2):
        a = checkpoint_io.read(_ckpt(run_dir, epoch, 0))
        b = checkpoint_io.read(_ckpt(run_dir, epoch, 1))
        lora = [k for k in a if "mindpet_delta_lora" in k and not k.startswith("adam")]
        assert lora and all(np.array_equal(a[k], b[k]) for k in lora)


def test_base_frozen_lora_trained_loss_falls(trained):
    run_dir, _, proc = trained
    base = checkpoint_io.read(next((run_dir / "base").glob("*.ckpt")))
    first, last = checkpoint_io.read(_ckpt(run_dir, 1, 0)), checkpoint_io.read(_ckpt(run_dir, 2, 0))
    frozen = [k for k in base]
    assert all(np.array_equal(base[k], last[k]) for k in frozen)  # the base model was loaded and left alone
    b = "model.layers.0.attention.wq.mindpet_delta_lora_b"
    assert np.abs(last[b]).max() > 0 and not np.array_equal(first[b], last[b])  # B starts at 0: it learned
    curve = json.loads((run_dir / "train" / "loss.json").read_text())
    assert len(curve) == 16
    assert np.mean([s["loss"] for s in curve[-4:]]) < np.mean([s["loss"] for s in curve[:4]])


def test_progress_lines_for_the_operator(trained):
    _, _, proc = trained
    lines = [json.loads(line.split(" ", 1)[1]) for line in proc.stdout.splitlines() if line.startswith("mathtune-progress ")]
    assert [(p["epoch"], p["step"]) for p in lines] == [(e, s) for e in (1, 2) for s in range(1, 9)]
    assert all(p["epochs"] == 2 and p["steps"] == 8 and p["loss"] > 0 for p in lines)
    # Each line carries every epoch complete by then: epoch 1 from its last step on, both at the end.
    assert [sorted(p["epochLoss"]) for p in lines] == [[]] * 7 + [["1"]] * 8 + [["1", "2"]]
    for epoch in ("1", "2"):
        mean = np.mean([p["loss"] for p in lines if str(p["epoch"]) == epoch])
        assert lines[-1]["epochLoss"][epoch] == pytest.approx(mean, abs=1e-6)
    assert last_json(proc.stdout)["epochLoss"] == lines[-1]["epochLoss"]


def _earlier_attempt(run_dir, retry):
    """A run dir whose train.work holds epoch 1 of both ranks, as a failed attempt leaves it."""
    write_mindrecord(retry / "tokenize")
    for rank in (0, 1):
        dst = retry / "train.work" / "output" / "checkpoint" / f"rank_{rank}"
        dst.mkdir(parents=True)
        (dst / _ckpt(run_dir, 1, rank).name).write_bytes(_ckpt(run_dir, 1, rank).read_bytes())
    return retry


def _epochs_trained(proc):
    return {json.loads(line.split(" ", 1)[1])["epoch"] for line in proc.stdout.splitlines()
            if line.startswith("mathtune-progress ")}


def test_resume_auto_continues_after_the_last_complete_epoch(trained, tmp_path):
    """A failed attempt left epoch 1 on both ranks: the retry trains epoch 2 only, to the same weights."""
    run_dir, spec, _ = trained
    retry = _earlier_attempt(run_dir, tmp_path / "retry")
    # ... and, as every attempt does when it starts, the recipe they were trained on.
    train.record_recipe(retry / "train.work", train.identity(_spec_of(spec), retry)["recipe"])
    proc = run_stage("train", spec, retry, "--resume", "auto")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "resuming after epoch 1" in proc.stdout
    assert _epochs_trained(proc) == {2}
    # The result says where it resumed: epoch 1's save of rank 0, taken at
    # step 8 (8 steps an epoch), which the status turns into steps redone.
    assert last_json(proc.stdout)["resumedFrom"] == {"epoch": 1, "checkpoint": _ckpt(run_dir, 1, 0).name, "step": 8}
    assert list(last_json(proc.stdout)["epochLoss"]) == ["2"]  # the epochs this attempt trained
    resumed = checkpoint_io.read(_ckpt(retry, 2, 0))
    straight = checkpoint_io.read(_ckpt(run_dir, 2, 0))
    b = "model.layers.1.attention.wv.mindpet_delta_lora_b"
    np.testing.assert_allclose(resumed[b], straight[b], atol=1e-6)


def test_checkpoints_of_another_recipe_are_never_resumed(trained, tmp_path):
    """A run re-created under the same name with a new recipe finds the old
    run's train.work on the kept claim: it must train afresh, not resume."""
    run_dir, spec, _ = trained
    retry = _earlier_attempt(run_dir, tmp_path / "recreated")
    train.record_recipe(retry / "train.work", "the digest of an earlier run's recipe")
    proc = run_stage("train", spec, retry, "--resume", "auto")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "not resuming from them" in proc.stdout and "resuming after epoch" not in proc.stdout
    assert _epochs_trained(proc) == {1, 2}


def test_failed_training_passes_msrun_exit_code_and_keeps_nothing_half_done(tmp_path):
    run_dir = tmp_path / "run"
    write_mindrecord(run_dir / "tokenize")
    # Base weights of another shape than the model (hidden 32, the model's 64):
    # a spec the API server takes, and MindFormers fails on every rank loading them.
    from tests import synthetic_ckpt

    wrong = synthetic_ckpt.write(tmp_path / "wrong-shape.ckpt", layers=2, hidden=32, vocab=512)
    write_spec(tmp_path / "run.yaml", model={"checkpoint": str(wrong)})
    # Paths relative to the working directory, as a user types them: the
    # workers msrun starts must still find the config the stage rendered.
    # (msrun kills the other workers at once, then waits some 30 s for its
    # scheduler to give them up: MS_NODE_TIMEOUT. Shortening it here made
    # the scheduler give up on workers still starting.)
    proc = run_stage("train", Path("run.yaml"), Path("run"), cwd=tmp_path)
    assert proc.returncode == 1
    assert last_json(proc.stdout)["error"] == "msrun exited with code 1"
    assert "last lines of" in proc.stdout
    worker_logs = [log.read_text() for log in (run_dir / "train.work").glob("msrun_log-*/worker_*.log")]
    assert any("should have the same shape as" in log for log in worker_logs), \
        "the workers failed, but not on the base weights' shape"
    assert not (run_dir / "train").exists()


def test_missing_tokenized_data_is_a_spec_error(tmp_path):
    spec = write_spec(tmp_path / "run.yaml")
    proc = run_stage("train", spec, tmp_path / "run")
    assert proc.returncode == 2
    assert "tokenize" in last_json(proc.stdout)["error"]


def test_fresh_start_ignores_an_earlier_attempts_checkpoints(trained, tmp_path):
    """Without --resume, files an earlier attempt left (here a bogus epoch 3) are not published as this run's."""
    run_dir, spec, _ = trained
    again = tmp_path / "again"
    write_mindrecord(again / "tokenize")
    for rank in (0, 1):
        stale = again / "train.work" / "output" / "checkpoint" / f"rank_{rank}"
        stale.mkdir(parents=True)
        (stale / f"tiny_llama_rank_{rank}-3_8.ckpt").write_bytes(_ckpt(run_dir, 2, rank).read_bytes())
    proc = run_stage("train", spec, again)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert last_json(proc.stdout)["checkpoints"] == [1, 2]
    assert sorted(published_checkpoints(again)) == [1, 2]
