"""config.json, generation_config.json and tokenizer files of a Hugging Face model. Pure but for the copy.

Sizes come from the exported tensors (what the weights are), the rest from
the family's MindFormers model config (families.py): rms_norm_eps, rope
theta, special token ids, and the trained context length.
"""
import json
import shutil
from pathlib import Path
from typing import Any, Dict, List, Mapping

from mathtune_api import MathFinetuneSpec as Spec

from ..errors import SpecError
from ..mindformers import families

TORCH_DTYPE = {"BFloat16": "bfloat16", "Float16": "float16", "Float32": "float32"}
# InternLM's Hugging Face model is code of its own (trust_remote_code): its config names it.
MODEL_TYPE = {"LlamaForCausalLM": "llama", "InternLMForCausalLM": "internlm"}


def shapes_of(entries) -> Dict[str, List[int]]:
    return {e.name: list(e.dims) for e in entries}


def model_config(spec: Spec, shapes: Mapping[str, List[int]], dtype: str) -> Dict[str, Any]:
    """config.json of the exported model."""
    fam = families.family(spec)
    mc = fam["model_config"]
    try:
        vocab, hidden = shapes["model.embed_tokens.weight"]
        intermediate = shapes["model.layers.0.mlp.gate_proj.weight"][0]
        kv_out = shapes["model.layers.0.self_attn.k_proj.weight"][0]
    except KeyError as exc:
        raise SpecError("spec.export", f"a complete Llama-shaped checkpoint ({exc.args[0]} is missing)") from None
    layers = len({n.split(".")[2] for n in shapes if n.startswith("model.layers.")})
    heads = int(mc["num_heads"])
    head_dim = hidden // heads
    config = {
        "architectures": [fam["arch"]],
        "model_type": MODEL_TYPE[fam["arch"]],
        "hidden_size": hidden,
        "intermediate_size": intermediate,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_out // head_dim,
        "head_dim": head_dim,
        "vocab_size": vocab,
        "hidden_act": "silu",
        "rms_norm_eps": float(mc["rms_norm_eps"]),
        "rope_theta": float(mc["theta"]),
        "max_position_embeddings": families.MAX_POSITIONS[fam["model_name"]],
        "attention_bias": "model.layers.0.self_attn.q_proj.bias" in shapes,
        "mlp_bias": False,
        "tie_word_embeddings": False,
        "bos_token_id": int(mc["bos_token_id"]),
        "eos_token_id": int(mc["eos_token_id"]),
        "pad_token_id": int(mc["pad_token_id"]),
        "torch_dtype": TORCH_DTYPE.get(dtype, "float32"),
    }
    if fam["arch"] == "InternLMForCausalLM":
        config["bias"] = config["attention_bias"]
    return config


def generation_config(config: Mapping[str, Any], spec: Spec) -> Dict[str, Any]:
    """Greedy, as the prediction stage generates."""
    return {"bos_token_id": config["bos_token_id"], "eos_token_id": config["eos_token_id"],
            "pad_token_id": config["pad_token_id"], "do_sample": False,
            "max_new_tokens": spec.prediction.max_new_tokens}


def write_json(path: Path, value: Any) -> Path:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def tokenizer_files(spec: Spec, tokenizer_path: Path, config: Mapping[str, Any],
                    out: Path) -> List[Path]:
    """The run's tokenizer as Hugging Face loads it: tokenizer.json (hf-json) or
    tokenizer.model (sentencepiece, tiktoken), with a tokenizer_config.json."""
    fmt = spec.model.tokenizer.format
    if not tokenizer_path.is_file():
        raise SpecError("spec.model.tokenizer.uri", f"an existing tokenizer file ({tokenizer_path})")
    target = out / ("tokenizer.json" if fmt == "hf-json" else "tokenizer.model")
    shutil.copyfile(tokenizer_path, target)
    written = [target]
    tokenizer_config: Dict[str, Any] = {"model_max_length": config["max_position_embeddings"],
                                        "clean_up_tokenization_spaces": False}
    if fmt == "hf-json":
        tokenizer_config["tokenizer_class"] = "PreTrainedTokenizerFast"
        names = _special_names(target, config)
        tokenizer_config.update({k: v for k, v in names.items() if v is not None})
    elif fmt == "sentencepiece":
        tokenizer_config["tokenizer_class"] = "LlamaTokenizer"
    written.append(write_json(out / "tokenizer_config.json", tokenizer_config))
    return written


def _special_names(tokenizer_json: Path, config: Mapping[str, Any]) -> Dict[str, Any]:
    """bos/eos/pad tokens by the ids the model config names, from the tokenizer's own added tokens."""
    try:
        added = {t["id"]: t["content"] for t in json.loads(tokenizer_json.read_text(encoding="utf-8"))
                 .get("added_tokens", [])}
    except (ValueError, KeyError, TypeError):
        added = {}
    return {"bos_token": added.get(config["bos_token_id"]), "eos_token": added.get(config["eos_token_id"]),
            "pad_token": added.get(config["pad_token_id"])}
