"""The LoRA adapter as PEFT saves one: adapter_config.json and adapter_model.safetensors.

MindFormers' LoRA (mindpet) keeps `<cell>.mindpet_delta_lora_a` (rank x in)
and `<cell>.mindpet_delta_lora_b` (out x rank) and adds (alpha/rank)·x·Aᵀ·Bᵀ
to the cell's output; PEFT's `lora_A.weight` (r x in) and `lora_B.weight`
(out x r) with scaling lora_alpha / r compute the same, so the tensors are
copied unchanged under PEFT's names (names.peft_name).
"""
from pathlib import Path
from typing import Any, Dict, List

from mathtune_api.spec_training import Lora

from ..errors import SpecError
from . import names, safetensors_out
from .hf_config import write_json


def adapter_config(family: str, lora: Lora, base_model: str) -> Dict[str, Any]:
    return {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_model,
        "r": lora.rank,
        "lora_alpha": float(lora.alpha),
        "lora_dropout": float(lora.dropout),
        "target_modules": names.target_modules(family, list(lora.target_modules)),
        "bias": "none",
        "fan_in_fan_out": False,
        "inference_mode": True,
        "use_rslora": False,
        "use_dora": False,
        "modules_to_save": None,
    }


def write(adapter_ckpt: Path, out: Path, family: str, lora: Lora,
          base_model: str) -> List[safetensors_out.Written]:
    entries = safetensors_out.entries(adapter_ckpt, lambda n: names.peft_name(family, n))
    if not entries:
        raise SpecError(str(adapter_ckpt), "an adapter checkpoint with LoRA weights (it has none)")
    out.mkdir(parents=True, exist_ok=True)
    config = write_json(out / "adapter_config.json", adapter_config(family, lora, base_model))
    weights = safetensors_out.write_file(entries, out / "adapter_model.safetensors", {"format": "pt"})
    return [weights, safetensors_out.Written.of(config)]
