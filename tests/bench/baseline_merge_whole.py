"""The whole-checkpoint baseline for bench_merge: the merge as the pipeline did
it before streaming (up to 8fab378): `ms.load_checkpoint` of the whole file,
every tensor to float32 numpy, loaded again for its dtypes, LoRA folded in
float64, and MindSpore tensors built again for `save_checkpoint`.

usage: baseline_merge_whole.py SRC_CKPT OUT_DIR SCALING
"""
import sys
from pathlib import Path

import numpy as np

LORA_A, LORA_B = ".mindpet_delta_lora_a", ".mindpet_delta_lora_b"


def read(path):
    import mindspore as ms

    return {name: (p if p.dtype != ms.bfloat16 else p.astype(ms.float32)).asnumpy()
            for name, p in ms.load_checkpoint(str(path)).items()}


def write(params, path, dtypes):
    import mindspore as ms

    items = []
    for name, value in params.items():
        tensor = ms.Tensor(value)
        if name in dtypes and dtypes[name] != tensor.dtype:
            tensor = tensor.astype(dtypes[name])
        items.append({"name": name, "data": tensor})
    ms.save_checkpoint(items, str(path))


def main(src: str, out_dir: str, scaling: float) -> None:
    import mindspore as ms

    dtypes = {name: p.dtype for name, p in ms.load_checkpoint(src).items()}
    params = read(src)
    base = {n: v for n, v in params.items() if not n.startswith("adam") and n != "global_step"
            and not n.endswith((LORA_A, LORA_B))}
    adapter = {n: v for n, v in params.items() if not n.startswith("adam") and n.endswith((LORA_A, LORA_B))}
    merged = dict(base)
    for name in adapter:
        if name.endswith(LORA_A):
            cell = name[: -len(LORA_A)]
            w = base[cell + ".weight"]
            delta = adapter[cell + LORA_B].astype(np.float64) @ adapter[name].astype(np.float64) * scaling
            merged[cell + ".weight"] = (w.astype(np.float64) + delta).astype(w.dtype)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write(merged, out / "merged.ckpt", dtypes)
    write(adapter, out / "adapter.ckpt", dtypes)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
