"""Fold LoRA into the base weights: W += B·A·(alpha/rank), the adapter kept apart.

MindFormers' LoRA (mindpet) adds `<cell>.mindpet_delta_lora_a` (rank x in) and
`<cell>.mindpet_delta_lora_b` (out x rank) next to `<cell>.weight` (out x in)
and computes y = x·Wᵀ + (alpha/rank)·x·Aᵀ·Bᵀ, so the merged weight gives the
same y with no adapter. Optimizer state and step counters in a training
checkpoint are not model weights and are dropped.
"""
from typing import Dict, Tuple

import numpy as np

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
        weight = base[weight_name]
        delta = b.astype(np.float64) @ a.astype(np.float64) * scaling
        if delta.shape != weight.shape:
            raise ValueError(f"{cell}: B·A is {delta.shape}, the weight is {weight.shape}")
        merged[weight_name] = (weight.astype(np.float64) + delta).astype(weight.dtype)
    return merged, adapter
