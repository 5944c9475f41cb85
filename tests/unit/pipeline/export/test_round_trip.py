"""Hugging Face -> import -> export -> Hugging Face gives the weights back bit for bit.

The Hugging Face files are written by the `safetensors` package (float32 and
float16; numpy has no bfloat16, so that file's header is written by hand
here, as the format's spec lays it out), imported by the base-weights
converter (MindFormers' names, a MindSpore checkpoint), exported by the
export stage's writer, and read back by the `safetensors` package."""
import json
import struct

import numpy as np
import pytest

from mathtune_pipeline.export import names, safetensors_out
from mathtune_pipeline.mindformers import weights

from .test_names import _hf_llama_names

pytestmark = pytest.mark.mindspore


def _shape(name, hidden=16, vocab=40, inter=24):
    if "embed_tokens" in name or name == "lm_head.weight":
        return (vocab, hidden)
    if "norm" in name:
        return (hidden,)
    if "gate_proj" in name or "up_proj" in name:
        return (inter, hidden)
    if "down_proj" in name:
        return (hidden, inter)
    return (hidden, hidden)


def _bf16_file(path, tensors):
    """safetensors with BF16 tensors: header length, JSON header, bytes (the format's spec)."""
    layout, blob, offset = {}, b"", 0
    for name, raw, shape in tensors:
        layout[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        blob += raw
        offset += len(raw)
    head = json.dumps(layout).encode()
    path.write_bytes(struct.pack("<Q", len(head)) + head + blob)


def test_round_trip_is_bit_for_bit(tmp_path):
    from safetensors.numpy import load_file, save_file

    rng = np.random.default_rng(0)
    hf = _hf_llama_names(layers=2)
    originals = {n: rng.standard_normal(_shape(n)).astype(np.float16 if "mlp" in n else np.float32) for n in hf}
    bf16 = {"model.layers.1.self_attn.q_proj.weight": rng.integers(0, 2**16, size=(16, 16), dtype=np.uint16)}
    for n in bf16:
        originals.pop(n)
    save_file({n: v for i, (n, v) in enumerate(originals.items()) if i % 2 == 0},
              str(tmp_path / "model-00001-of-00003.safetensors"))
    save_file({n: v for i, (n, v) in enumerate(originals.items()) if i % 2 == 1},
              str(tmp_path / "model-00002-of-00003.safetensors"))
    _bf16_file(tmp_path / "model-00003-of-00003.safetensors", [(n, v.tobytes(), v.shape) for n, v in bf16.items()])

    ckpt = weights.convert(weights.safetensors_files(tmp_path), tmp_path / "imported" / "base.ckpt")
    out = tmp_path / "exported"
    written = safetensors_out.write_sharded(safetensors_out.entries(ckpt, lambda n: names.hf_name("llama3-8b", n)),
                                            out, 4000, {"format": "pt"})
    assert len(written) > 2 and (out / "model.safetensors.index.json").is_file()

    index = json.loads((out / "model.safetensors.index.json").read_text())
    assert sorted(index["weight_map"]) == sorted(hf)
    raw, read_by_library = {}, {}
    for shard in sorted(set(index["weight_map"].values())):
        data = (out / shard).read_bytes()
        head_len = struct.unpack("<Q", data[:8])[0]
        header = json.loads(data[8:8 + head_len])
        header.pop("__metadata__", None)
        for name, info in header.items():
            begin, end = info["data_offsets"]
            raw[name] = (info["dtype"], data[8 + head_len + begin:8 + head_len + end])
        if all(info["dtype"] != "BF16" for info in header.values()):  # numpy reads every dtype but bfloat16
            read_by_library.update(load_file(str(out / shard)))
    assert set(raw) == set(hf) and len(read_by_library) >= len(hf) // 2
    for name, value in originals.items():
        assert raw[name] == ({"float16": "F16", "float32": "F32"}[value.dtype.name], value.tobytes()), name
        if name in read_by_library:
            assert read_by_library[name].dtype == value.dtype and read_by_library[name].tobytes() == value.tobytes()
    for name, value in bf16.items():
        assert raw[name] == ("BF16", value.tobytes()), name
