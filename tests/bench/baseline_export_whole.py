"""The baseline of bench_export.py: the whole state dict in memory, then one
safetensors file per shard (what transformers' save_pretrained does with a
loaded model: it holds every weight, and safetensors serialises each shard).

    baseline_export_whole.py <checkpoint.ckpt> <out dir> <max shard bytes>

bfloat16 has no numpy dtype: weights are held as uint16 of the same bytes.
"""
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from mathtune_pipeline.export import names
from mathtune_pipeline.mindformers import checkpoint_io


def main(src: str, out: str, max_shard: str) -> None:
    state = {}
    for tensor in checkpoint_io.tensors(src):
        dtype = np.uint16 if tensor.dtype == "BFloat16" else checkpoint_io._NUMPY[tensor.dtype]
        state[names.hf_name("llama3-8b", tensor.name)] = np.frombuffer(tensor.data, dtype).reshape(tensor.dims)
    Path(out).mkdir(parents=True, exist_ok=True)
    shard, used, count = {}, 0, 0
    for name, value in state.items():
        if shard and used + value.nbytes > int(max_shard):
            count += 1
            save_file(shard, str(Path(out) / f"model-{count:05d}.safetensors"))
            shard, used = {}, 0
        shard[name] = value
        used += value.nbytes
    save_file(shard, str(Path(out) / f"model-{count + 1:05d}.safetensors"))


if __name__ == "__main__":
    main(*sys.argv[1:])
