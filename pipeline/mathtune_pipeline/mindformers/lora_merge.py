"""Fold LoRA into the base weights: W += B·A·(alpha/rank), the adapter kept apart.

MindFormers' LoRA (mindpet) adds `<cell>.mindpet_delta_lora_a` (rank x in) and
`<cell>.mindpet_delta_lora_b` (out x rank) next to `<cell>.weight` (out x in)
and computes y = x·Wᵀ + (alpha/rank)·x·Aᵀ·Bᵀ, so the merged weight gives the
same y with no adapter. Optimizer state and step counters in a training
checkpoint are not model weights and are dropped.

`merge_file` does it from file to file streaming (checkpoint_io): the small
LoRA weights are read first, then each tensor is copied or folded and written
as it is read, in its own dtype. Host memory holds one weight, not the model:
an 8B model's merge needs no more than any small one's plus its largest matrix.
"""
from pathlib import Path
from typing import Dict, Tuple, Union

import numpy as np

from ..errors import SpecError
from . import checkpoint_io

LORA_A = ".mindpet_delta_lora_a"
LORA_B = ".mindpet_delta_lora_b"
_TRAINING_STATE_PREFIXES = ("adam_m.", "adam_v.", "accu_grads.", "moments.")
_TRAINING_STATE_NAMES = {"scale_sense", "global_step", "epoch_num", "step_num", "loss_scale",
                         "global_batch_size", "current_iterator_step", "last_overflow_iterator_step"}


def is_training_state(name: str) -> bool:
    return name in _TRAINING_STATE_NAMES or name.startswith(_TRAINING_STATE_PREFIXES)


def split(params: Dict[str, np.ndarray]) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray]]:
    """(model weights without LoRA, LoRA A/B pairs) of a training checkpoint."""
    base: Dict[str, np.ndarray] = {}
    adapter: Dict[str, np.ndarray] = {}
    for name, value in params.items():
        if is_training_state(name):
            continue
        (adapter if name.endswith((LORA_A, LORA_B)) else base)[name] = value
    return base, adapter


def merge(params: Dict[str, np.ndarray], scaling: float) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray]]:
    """(merged model weights, adapter weights). Computed in float64, stored in each weight's dtype."""
    base, adapter = split(params)
    cells = sorted({name[: -len(LORA_A)] for name in adapter if name.endswith(LORA_A)})
    if len(cells) * 2 != len(adapter):
        raise ValueError(f"unpaired LoRA weights: {sorted(adapter)}")
    merged = dict(base)
    for cell in cells:
        a, b = adapter[cell + LORA_A], adapter.get(cell + LORA_B)
        weight_name = cell + ".weight"
        if b is None or weight_name not in base:
            raise ValueError(f"{cell}: LoRA A without its B or its base weight")
        merged[weight_name] = fold(cell, base[weight_name], a, b, scaling)
    return merged, adapter


def fold(cell: str, weight: np.ndarray, a: np.ndarray, b: np.ndarray, scaling: float) -> np.ndarray:
    """W + B·A·scaling, computed in float64, returned in the weight's numpy dtype."""
    delta = b.astype(np.float64) @ a.astype(np.float64) * scaling
    if delta.shape != weight.shape:
        raise ValueError(f"{cell}: B·A is {delta.shape}, the weight is {weight.shape}")
    return (weight.astype(np.float64) + delta).astype(weight.dtype)


def merge_file(src: Union[str, Path], merged_path: Union[str, Path], adapter_path: Union[str, Path],
               scaling: float) -> int:
    """Fold `src`'s LoRA into its weights, streaming: writes `merged_path` (the
    model without LoRA) and `adapter_path` (the LoRA weights); returns the
    number of LoRA tensors. Everything is checked before anything is written;
    a damaged `src` is a SpecError naming it."""
    src = Path(src)
    adapter = {t.name: t for t in checkpoint_io.tensors(src, lambda n: n.endswith((LORA_A, LORA_B))
                                                        and not is_training_state(n))}
    if not adapter:
        raise SpecError(str(src), "a trained LoRA checkpoint (no LoRA weights in it)")
    shapes = {name: dims for name, dims, _, _ in checkpoint_io.grouped(src)}
    cells = sorted({name[: -len(LORA_A)] for name in adapter if name.endswith(LORA_A)})
    if len(cells) * 2 != len(adapter):
        raise SpecError(str(src), f"LoRA weights in pairs (A and B) per cell, found {sorted(adapter)}")
    for cell in cells:
        shape = shapes.get(cell + ".weight")
        if cell + LORA_B not in adapter or shape is None:
            raise SpecError(str(src), f"{cell}: LoRA A with its B and its base weight")
        a, b = adapter[cell + LORA_A].dims, adapter[cell + LORA_B].dims
        if len(a) != 2 or len(b) != 2 or (b[0], a[1]) != tuple(shape) or a[0] != b[1]:
            raise SpecError(str(src), f"{cell}: B {b} · A {a} of the weight's shape {shape}")
    with checkpoint_io.Writer(merged_path) as out, open(src, "rb") as source:
        for name, dims, dtype, parts in checkpoint_io.grouped(src):
            if is_training_state(name) or name in adapter:
                continue
            cell = name[: -len(".weight")]
            if name.endswith(".weight") and cell + LORA_A in adapter:
                weight = checkpoint_io.to_numpy(dtype, b"".join(_read(source, r) for r in parts), dims)
                folded = fold(cell, weight, adapter[cell + LORA_A].array(), adapter[cell + LORA_B].array(), scaling)
                out.add_array(name, folded, dtype)
            else:
                out.add_raw(name, dims, dtype, source, parts)
    with checkpoint_io.Writer(adapter_path) as out:
        for name, tensor in adapter.items():
            out.add(name, tensor.dims, tensor.dtype, tensor.data)
    return len(adapter)


def output_bytes(src: Union[str, Path]) -> int:
    """What merge_file writes for `src` (merged + adapter): every tensor but the training state."""
    return sum(r.size for r in checkpoint_io.records(src) if not is_training_state(r.name))


def _read(source, record: checkpoint_io.Record) -> bytes:
    source.seek(record.offset)
    return source.read(record.size)
