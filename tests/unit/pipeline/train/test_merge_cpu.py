"""merge, proved numerically on the CPU training's own checkpoints."""

import numpy as np
import pytest
import yaml

from mathtune_pipeline.mindformers import checkpoint_io, inference, lora_merge, render

from .conftest import last_json, published_checkpoints, run_stage

pytestmark = pytest.mark.mindspore


@pytest.fixture(scope="module")
def merged(trained):
    run_dir, spec, _ = trained
    proc = run_stage("merge", spec, run_dir)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return run_dir, last_json(proc.stdout)


def test_every_epoch_merged_with_its_adapter(merged):
    run_dir, result = merged
    assert result["epochs"] == [1, 2] and result["scaling"] == 2.0
    for epoch in (1, 2):
        merged_params = checkpoint_io.read(run_dir / "merge" / f"epoch_{epoch}" / "merged.ckpt")
        adapter = checkpoint_io.read(run_dir / "merge" / f"epoch_{epoch}" / "adapter.ckpt")
        assert not any("lora" in k or k.startswith("adam") for k in merged_params)
        assert sorted(adapter) == sorted(k for k in adapter if lora_merge.LORA_A in k or lora_merge.LORA_B in k)
        assert len(adapter) == 2 * 2 * 2  # layers x (wq, wv) x (A, B)


def _config(train_config, keep_lora):
    return render.inference_config(train_config, run_mode="predict", load_checkpoint="", max_new_tokens=1,
                                   use_past=False, keep_lora=keep_lora)


def test_merged_logits_equal_the_lora_models(merged):
    run_dir, _ = merged
    config = yaml.safe_load((run_dir / "train" / "finetune.yaml").read_text())
    trained_ckpt = published_checkpoints(run_dir)[2][0]
    lora_net = inference.load(_config(config, keep_lora=True), trained_ckpt)
    merged_net = inference.load(_config(config, keep_lora=False),
                                run_dir / "merge" / "epoch_2" / "merged.ckpt")
    base_net = inference.load(_config(config, keep_lora=False),
                              next((run_dir / "base").glob("*.ckpt")))
    ids = np.random.default_rng(0).integers(3, 500, size=(4, 32)).astype(np.int32)
    want, got, base = (inference.logits(n, ids) for n in (lora_net, merged_net, base_net))
    assert want.shape == (4, 32, 512)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    assert np.abs(base - want).max() > 1e-3  # the adapter changes the model: the check could fail


def test_merge_formula_on_known_numbers():
    a = np.array([[1.0, 2.0]], np.float32)           # rank 1 x in 2
    b = np.array([[3.0], [4.0]], np.float32)         # out 2 x rank 1
    w = np.zeros((2, 2), np.float32)
    merged, adapter = lora_merge.merge({"x.weight": w, "x.mindpet_delta_lora_a": a, "x.mindpet_delta_lora_b": b,
                                        "adam_m.x.weight": w, "global_step": np.array([3])}, scaling=2.0)
    np.testing.assert_array_equal(merged["x.weight"], [[6.0, 12.0], [8.0, 16.0]])
    assert set(merged) == {"x.weight"} and set(adapter) == {"x.mindpet_delta_lora_a", "x.mindpet_delta_lora_b"}
    with pytest.raises(ValueError, match="unpaired"):
        lora_merge.merge({"x.weight": w, "x.mindpet_delta_lora_a": a}, 1.0)


def test_merge_before_train_is_a_spec_error(tmp_path, trained):
    _, spec, _ = trained
    proc = run_stage("merge", spec, tmp_path / "empty")
    assert proc.returncode == 2 and "train" in last_json(proc.stdout)["error"]
