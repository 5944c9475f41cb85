"""Model families the run spec names (`spec.model.family`), as MindFormers model configs.

The sizes are the published ones the seeds fine-tuned: Llama3-8B (seeds 000,
001, 003), InternLM-7B (seed 002), LLaMA-7B (seed 004). Values are in the
seeds' MindFormers (r1.1) vocabulary; `dialect.py` adapts them to the
installed MindFormers. `tiny-llama` is the CPU profile's model, sized by
`spec.model.tiny`, with random seeded weights.
"""
from typing import Any, Dict, Mapping, Optional

from mathtune_api import MathFinetuneSpec as Spec

from ..errors import SpecError

# llama3-8b: exactly the model_config of the seeds' run (fixture
# finetune_config_run1.yaml), minus the run-dependent keys (seq_length, pet_config).
LLAMA3_8B: Dict[str, Any] = {
    "type": "LlamaConfig",
    "batch_size": 1,
    "seq_length": None,
    "hidden_size": 4096,
    "num_layers": 32,
    "num_heads": 32,
    "n_kv_heads": 8,
    "vocab_size": 128256,
    "intermediate_size": 14336,
    "rms_norm_eps": 1.0e-5,
    "bos_token_id": 128000,
    "eos_token_id": 128001,
    "pad_token_id": 128002,
    "ignore_token_id": -100,
    "compute_dtype": "bfloat16",
    "layernorm_compute_type": "float32",
    "softmax_compute_type": "float32",
    "rotary_dtype": "float32",
    "param_init_type": "bfloat16",
    "use_past": False,
    "scaling_factor": 1.0,
    "theta": 500000,
    "extend_method": "None",
    "use_flash_attention": True,
    "offset": 0,
    "fine_grain_interleave": 1,
    "checkpoint_name_or_path": "",
    "repetition_penalty": 1,
    "max_decode_length": 512,
    "top_k": 3,
    "top_p": 1,
    "do_sample": False,
}

# LLaMA-7B (MindFormers' llama_7b): 32 layers, 32 heads, SwiGLU 11008, vocab 32000, fp16.
LLAMA_7B: Dict[str, Any] = {
    **LLAMA3_8B,
    "n_kv_heads": None,
    "vocab_size": 32000,
    "intermediate_size": 11008,
    "rms_norm_eps": 1.0e-6,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 0,
    "compute_dtype": "float16",
    "param_init_type": "float16",
    "theta": 10000,
    "use_flash_attention": False,
}

# InternLM-7B (MindFormers research/internlm): the LLaMA-7B shape with biases on
# q, k, v and o, vocab 103168.
INTERNLM_7B: Dict[str, Any] = {
    **LLAMA_7B,
    "type": "InternLMConfig",
    "vocab_size": 103168,
    "pad_token_id": 2,
    "has_bias": True,
}

FAMILIES = {
    "llama3-8b": {"model_name": "llama3_8b", "arch": "LlamaForCausalLM", "model_config": LLAMA3_8B},
    "llama-7b": {"model_name": "llama_7b", "arch": "LlamaForCausalLM", "model_config": LLAMA_7B},
    "internlm-7b": {"model_name": "internlm_7b", "arch": "InternLMForCausalLM", "model_config": INTERNLM_7B},
    "tiny-llama": {"model_name": "tiny_llama", "arch": "LlamaForCausalLM", "model_config": None},
}

# Special token ids of the tiny model's tokenizer (demo data): the same roles as Llama 3's.
TINY_SPECIAL_TOKENS = {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}


def tiny_model_config(tiny: Dict[str, Any]) -> Dict[str, Any]:
    """A small LLaMA for the CPU profile, from `spec.model.tiny`."""
    try:
        hidden, layers, heads, vocab = (int(tiny[k]) for k in ("hiddenSize", "numLayers", "numHeads", "vocabSize"))
    except (KeyError, TypeError, ValueError):
        raise SpecError("spec.model.tiny", "integers numLayers, hiddenSize, numHeads, vocabSize") from None
    if min(hidden, layers, heads, vocab) < 1 or hidden % heads:
        raise SpecError("spec.model.tiny", f"positive sizes with hiddenSize a multiple of numHeads "
                                           f"(got hiddenSize {hidden}, numHeads {heads})")
    return {
        **LLAMA3_8B,
        "hidden_size": hidden,
        "num_layers": layers,
        "num_heads": heads,
        "n_kv_heads": None,
        "vocab_size": vocab,
        "intermediate_size": 4 * hidden,
        **TINY_SPECIAL_TOKENS,
        "theta": 10000,
        "use_flash_attention": False,
    }


# The positions each model was trained to read (the published context
# lengths: Llama 3 8192, LLaMA-7B and InternLM-7B 2048), by the finetune
# config's `trainer.model_name`. The rendered model_config leaves
# `max_position_embedding` unset (MindFormers then takes seq_length), so the
# training config alone does not say it. The tiny CPU model's rotary
# embedding has no trained length; 512 bounds what a CPU step costs.
MAX_POSITIONS = {"llama3_8b": 8192, "llama_7b": 2048, "internlm_7b": 2048, "tiny_llama": 512}


def max_positions(config: Mapping[str, Any]) -> int:
    """The longest window (prompt + new tokens) the model of a rendered config may run:
    its `max_position_embedding` when the config sets one, else its family's."""
    model_config = config["model"]["model_config"]
    if model_config.get("max_position_embedding"):
        return int(model_config["max_position_embedding"])
    name = config.get("trainer", {}).get("model_name")
    return MAX_POSITIONS.get(name, int(model_config["seq_length"]))


def family(spec: Spec) -> Dict[str, Any]:
    name = spec.model.family
    if name not in FAMILIES:
        raise SpecError("spec.model.family", f"one of {', '.join(FAMILIES)} (got {name!r})")
    entry = dict(FAMILIES[name])
    if name == "tiny-llama":
        entry["model_config"] = tiny_model_config(spec.model.tiny.wire())
    entry["model_config"] = dict(entry["model_config"])
    return entry


def check_vocabulary(spec: Spec, tokenizer_vocab: Optional[int], model_vocab: int) -> None:
    """Token ids past the model's embedding table crash deep inside MindSpore;
    a SpecError naming the field instead, at whichever stage meets it first."""
    if tokenizer_vocab is not None and int(tokenizer_vocab) > int(model_vocab):
        field = "spec.model.tiny.vocabSize" if spec.model.family == "tiny-llama" else "spec.model.tokenizer"
        raise SpecError(field, f"a model vocabulary of at least the tokenizer's {tokenizer_vocab} ids "
                               f"(it has {model_vocab})")
