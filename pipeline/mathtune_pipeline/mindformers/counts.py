"""Parameter counts from a model config, without building the model.

The low-parameter ratio the contests score is trainable / total. LoRA adds
A (rank x in) and B (out x rank) to each targeted projection, so a LLaMA layer
contributes rank x (in + out) per target, where wq and wo map hidden ->
hidden and wk, wv map hidden -> n_kv_heads x head_dim (grouped-query
attention in Llama 3). The tests check both formulas against models built by
MindFormers itself, on scaled-down shapes.
"""
import re
from typing import Any, Dict, Tuple

from ..errors import SpecError

PROJECTIONS = ("wq", "wk", "wv", "wo", "w1", "w2", "w3")


def _shapes(model_config: Dict[str, Any]) -> Dict[str, Tuple[int, int]]:
    """(in, out) of each projection of one LLaMA layer."""
    hidden = model_config["hidden_size"]
    heads = model_config["num_heads"]
    kv_heads = model_config.get("n_kv_heads") or heads
    kv = kv_heads * (hidden // heads)
    ffn = ffn_size(model_config)
    return {"wq": (hidden, hidden), "wk": (hidden, kv), "wv": (hidden, kv), "wo": (hidden, hidden),
            "w1": (hidden, ffn), "w3": (hidden, ffn), "w2": (ffn, hidden)}


def ffn_size(model_config: Dict[str, Any]) -> int:
    """LLaMA's SwiGLU width: the configured one, else 2/3 of 4 x hidden rounded up to `multiple_of`."""
    if model_config.get("intermediate_size"):
        return int(model_config["intermediate_size"])
    hidden = model_config["hidden_size"]
    multiple = model_config.get("multiple_of", 256)
    width = int(2 * 4 * hidden / 3)
    if model_config.get("ffn_dim_multiplier"):
        width = int(model_config["ffn_dim_multiplier"] * width)
    return multiple * ((width + multiple - 1) // multiple)


def targeted(pattern: str) -> Tuple[str, ...]:
    """The projections MindFormers' `target_modules` regex selects (it matches parameter-cell names)."""
    found = tuple(p for p in PROJECTIONS if re.fullmatch(pattern, f"model.layers.0.attention.{p}")
                  or re.fullmatch(pattern, f"model.layers.0.feed_forward.{p}"))
    if not found:
        raise SpecError("spec.lora.targetModules", f"names of LLaMA projections ({', '.join(PROJECTIONS)}); "
                                                   f"{pattern!r} selects none")
    return found


def lora_params(model_config: Dict[str, Any], pet_config: Dict[str, Any]) -> int:
    shapes = _shapes(model_config)
    rank = pet_config["lora_rank"]
    per_layer = sum(rank * (shapes[p][0] + shapes[p][1]) for p in targeted(pet_config["target_modules"]))
    return model_config["num_layers"] * per_layer


def base_params(model_config: Dict[str, Any]) -> int:
    """Every weight of the base model: embeddings, layers, final norm, output head."""
    shapes = _shapes(model_config)
    hidden, vocab = model_config["hidden_size"], model_config["vocab_size"]
    layer = sum(i * o for i, o in shapes.values()) + 2 * hidden  # projections + two RMSNorms
    if model_config.get("qkv_has_bias") or model_config.get("has_bias"):
        layer += sum(shapes[p][1] for p in ("wq", "wk", "wv"))
    if model_config.get("attn_proj_has_bias") or model_config.get("has_bias"):
        layer += shapes["wo"][1]
    head = 0 if model_config.get("tie_word_embeddings") else vocab * hidden
    return vocab * hidden + model_config["num_layers"] * layer + hidden + head
