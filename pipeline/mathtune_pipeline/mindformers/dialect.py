"""The seeds' MindFormers (r1.1) config, said the way the installed MindFormers reads it.

Rendering stays in the seeds' vocabulary (so it is checked against their real
config); this is the one place that knows how later MindFormers renamed
things. MindFormers 1.9 (our images and the CPU profile):

- `FP32StateAdamWeightDecay` is gone; `AdamW` keeps fp32 moments the same way
  and takes `betas: [beta1, beta2]`; it does not support MindSpore's parallel
  optimizer in data-parallel mode (Optimizer._use_parallel_optimizer raises
  on Ascend), so that mode runs without it: LoRA's few million trainable
  parameters gain nothing from sharding their optimizer state anyway;
- the checkpoint callback is spelled `CheckpointMonitor`;
- `ObsMonitor` (ModelArts' OBS upload) is gone, and with it `remote_save_url`;
- InternLM has no class of its own: it is LLaMA with biases on q, k, v and o,
  which `LlamaConfig` expresses as `qkv_has_bias` and `attn_proj_has_bias`.
"""
import copy
from typing import Any, Dict, Optional, Tuple

_ADAMW_ALIASES = {"FP32StateAdamWeightDecay", "AdamWeightDecay", "AdamW"}


def _version_tuple(version: str) -> Tuple[int, ...]:
    parts = []
    for piece in version.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def installed_version() -> Optional[str]:
    try:
        from importlib.metadata import version

        return version("mindformers")
    except Exception:  # noqa: BLE001 - not installed: configs stay in the seeds' vocabulary
        return None


def adapt(config: Dict[str, Any], version: Optional[str] = None) -> Dict[str, Any]:
    """A copy of `config` for MindFormers `version` (default: the installed one)."""
    version = version if version is not None else installed_version()
    cfg = copy.deepcopy(config)
    if version is None or _version_tuple(version) < (1, 3, 0):
        return cfg
    opt = cfg.get("optimizer")
    if opt and opt.get("type") in _ADAMW_ALIASES:
        beta1, beta2 = opt.pop("beta1", 0.9), opt.pop("beta2", 0.999)
        cfg["optimizer"] = {"type": "AdamW", "betas": [beta1, beta2], "eps": opt.get("eps", 1e-8),
                            "weight_decay": opt.get("weight_decay", 0.0)}
        parallel = cfg.get("parallel") or {}
        if parallel.get("parallel_mode") == 0 and parallel.get("enable_parallel_optimizer"):
            parallel["enable_parallel_optimizer"] = False
    for key in ("callbacks", "eval_callbacks"):
        if key in cfg:
            kept = [dict(cb, type="CheckpointMonitor") if cb.get("type") == "CheckpointMointor" else cb
                    for cb in cfg[key] if cb.get("type") != "ObsMonitor"]
            if kept:
                cfg[key] = kept
            else:
                del cfg[key]
    cfg.pop("remote_save_url", None)
    model = cfg.get("model", {})
    model_config = model.get("model_config", {})
    if model_config.get("type") == "InternLMConfig":
        has_bias = model_config.pop("has_bias", True)
        model_config.update({"type": "LlamaConfig", "qkv_has_bias": has_bias, "attn_proj_has_bias": has_bias})
    if model.get("arch", {}).get("type") == "InternLMForCausalLM":
        model["arch"]["type"] = "LlamaForCausalLM"
    return cfg
