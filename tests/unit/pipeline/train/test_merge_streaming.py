"""merge streams the checkpoint: host memory bounded by a tensor, not the model;
dtypes kept; a damaged checkpoint is bad input. Real MindSpore, real files."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from mathtune_pipeline.mindformers import checkpoint_io

from tests import stage_result, synthetic_ckpt

from .conftest import write_spec

pytestmark = pytest.mark.mindspore


def _merge(spec, run_dir):
    """The merge stage in its own process: (exit code, stdout, stderr)."""
    proc = subprocess.run([sys.executable, "-m", "mathtune_pipeline.cli", "merge", "--spec", str(spec),
                           "--run-dir", str(run_dir)], capture_output=True, text=True, timeout=900)
    return proc.returncode, proc.stdout, proc.stderr


def _merge_rss(spec, run_dir):
    """The merge stage's peak RSS in bytes (wait4 on its own process)."""
    proc = subprocess.Popen([sys.executable, "-m", "mathtune_pipeline.cli", "merge", "--spec", str(spec),
                             "--run-dir", str(run_dir)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    err = proc.stderr.read().decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, err[-3000:]
    return usage.ru_maxrss * 1024


def test_peak_memory_is_bounded_by_a_tensor_not_the_checkpoint(tmp_path):
    spec = write_spec(tmp_path / "run.yaml")
    small = synthetic_ckpt.write(tmp_path / "small.ckpt", layers=1, hidden=64, vocab=128)
    big = synthetic_ckpt.write(tmp_path / "big.ckpt", layers=8, hidden=1024, vocab=2048)
    size = big.stat().st_size
    assert size > 300 * 2**20
    synthetic_ckpt.finished_train_stage(tmp_path / "small", small)
    synthetic_ckpt.finished_train_stage(tmp_path / "big", big)
    baseline = _merge_rss(spec, tmp_path / "small")  # the interpreter, MindSpore, the stage's code
    peak = _merge_rss(spec, tmp_path / "big")
    # The largest tensor is 8 MiB; the old path held the file's bytes, its parse and two copies of the weights.
    extra = peak - baseline
    assert extra < size / 4, f"merge of a {size / 2**20:.0f} MiB checkpoint: {extra / 2**20:.0f} MiB above baseline"


def test_dtypes_kept_and_lora_folded_exactly(tmp_path):
    import mindspore as ms

    spec = write_spec(tmp_path / "run.yaml")  # rank 8, alpha 16: scaling 2
    src = synthetic_ckpt.write(tmp_path / "t.ckpt", layers=2, hidden=64, vocab=128, dtype="bfloat16")
    before = ms.load_checkpoint(str(src))
    src = synthetic_ckpt.finished_train_stage(tmp_path / "run", src)
    kept = src.read_bytes()
    code, out, err = _merge(spec, tmp_path / "run")
    assert code == 0, err[-3000:]
    assert src.read_bytes() == kept  # train's output is left as it was
    merged = ms.load_checkpoint(str(tmp_path / "run" / "merge" / "epoch_1" / "merged.ckpt"))
    adapter = ms.load_checkpoint(str(tmp_path / "run" / "merge" / "epoch_1" / "adapter.ckpt"))
    weights = {n for n in before if not n.startswith("adam") and n != "global_step"
               and synthetic_ckpt.LORA_A not in n and synthetic_ckpt.LORA_B not in n}
    assert set(merged) == weights
    assert set(adapter) == {n for n in before if not n.startswith("adam") and "mindpet" in n}
    for name, param in merged.items():
        assert param.dtype == before[name].dtype == ms.bfloat16, name
        cell = name[: -len(".weight")]
        if cell + synthetic_ckpt.LORA_A in before:
            a = before[cell + synthetic_ckpt.LORA_A].asnumpy().astype(np.float64)
            b = before[cell + synthetic_ckpt.LORA_B].asnumpy().astype(np.float64)
            w = before[name].astype(ms.float32).asnumpy().astype(np.float64)
            want = ms.Tensor((w + b @ a * 2.0).astype(np.float32)).astype(ms.bfloat16).astype(ms.float32).asnumpy()
            np.testing.assert_array_equal(param.astype(ms.float32).asnumpy(), want, err_msg=name)
            assert np.abs(want - w).max() > 0  # the fold changed the weight: the check could fail
        else:
            np.testing.assert_array_equal(param.astype(ms.float32).asnumpy(),
                                          before[name].astype(ms.float32).asnumpy(), err_msg=name)
    for name, param in adapter.items():
        assert param.dtype == ms.float32
        np.testing.assert_array_equal(param.asnumpy(), before[name].asnumpy())


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_a_damaged_training_checkpoint_is_bad_input_naming_the_file(tmp_path, damage):
    spec = write_spec(tmp_path / "run.yaml")
    src = synthetic_ckpt.write(tmp_path / "t.ckpt", layers=2, hidden=64, vocab=128)
    src = synthetic_ckpt.finished_train_stage(tmp_path / "run", src)
    data = src.read_bytes()
    src.write_bytes({"truncated": data[: len(data) * 2 // 3], "garbage": b"\xff not a checkpoint" * 100,
                     "empty": b""}[damage])
    kept = src.read_bytes()
    code, out, err = _merge(spec, tmp_path / "run")
    assert code == 2, out[-2000:] + err[-3000:]
    result = stage_result.check(json.loads(out.strip().splitlines()[-1]))
    assert str(src) in result["error"] and "checkpoint" in result["error"]
    assert src.read_bytes() == kept
    assert not (tmp_path / "run" / "merge").exists()


def test_the_writer_writes_what_save_checkpoint_writes(tmp_path):
    import mindspore as ms

    rng = np.random.default_rng(1)
    params = {"w": rng.standard_normal((6, 5)).astype(np.float32), "h": rng.standard_normal(7).astype(np.float16),
              "b": rng.standard_normal((3, 4)).astype(np.float32), "step": np.array([3], np.int32)}
    dtypes = {"b": "BFloat16"}
    ms.save_checkpoint([{"name": n, "data": ms.Tensor(v).astype(ms.bfloat16) if n in dtypes else ms.Tensor(v)}
                        for n, v in params.items()], str(tmp_path / "ms.ckpt"))
    checkpoint_io.write(params, tmp_path / "ours.ckpt", dtypes)
    assert (tmp_path / "ours.ckpt").read_bytes() == (tmp_path / "ms.ckpt").read_bytes()


def test_slices_of_a_large_tensor_are_joined_both_ways(tmp_path, monkeypatch):
    import mindspore as ms

    monkeypatch.setattr(checkpoint_io, "SLICE_BYTES", 64)  # MindSpore slices at 512 MiB; the format is the same
    value = np.arange(100, dtype=np.float32).reshape(25, 4)
    checkpoint_io.write({"a": value, "z": value[:1]}, tmp_path / "s.ckpt")
    assert len(list(checkpoint_io.records(tmp_path / "s.ckpt"))) == 7 + 1
    np.testing.assert_array_equal(ms.load_checkpoint(str(tmp_path / "s.ckpt"))["a"].asnumpy(), value)
    np.testing.assert_array_equal(checkpoint_io.read(tmp_path / "s.ckpt")["a"], value)


def _append_value_header(path, name, dims, dtype, content_size):
    """A checkpoint value whose tensor bytes are `content_size` zeros, as a hole: a
    real file the size of a large model that costs no disk."""
    def varint(v):
        out = bytearray()
        while True:
            out.append((v & 0x7F) | (0x80 if v > 0x7F else 0))
            v >>= 7
            if not v:
                return bytes(out)

    def field(number, payload_len):
        return varint((number << 3) | 2) + varint(payload_len)

    tensor = b"".join(varint(0x08) + varint(d) for d in dims) + field(2, len(dtype)) + dtype.encode()
    tensor += field(3, content_size)
    value = field(1, len(name)) + name.encode() + field(2, len(tensor) + content_size) + tensor
    with open(path, "ab") as f:
        f.write(field(1, len(value) + content_size) + value)
        f.truncate(f.tell() + content_size)


def test_a_volume_too_small_for_the_merged_checkpoints_fails_before_writing(tmp_path):
    spec = write_spec(tmp_path / "run.yaml")
    src = synthetic_ckpt.write(tmp_path / "t.ckpt", layers=1, hidden=64, vocab=128)
    free = __import__("shutil").disk_usage(tmp_path).free
    rows = (free + 2**30) // 4 // 1024
    _append_value_header(src, "model.tok_embeddings.big_weight", (rows, 1024), "Float32", rows * 1024 * 4)
    assert src.stat().st_size > free and src.stat().st_blocks * 512 < 2**30  # sparse: no disk spent
    src = synthetic_ckpt.finished_train_stage(tmp_path / "run", src)
    code, out, err = _merge(spec, tmp_path / "run")
    assert code == 2, out[-2000:] + err[-3000:]
    error = stage_result.check(json.loads(out.strip().splitlines()[-1]))["error"]
    assert "spec.storage.size" in error and "GiB free" in error
    assert not (tmp_path / "run" / "merge").exists() and not (tmp_path / "run" / "merge.work").exists()
