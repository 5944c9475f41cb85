"""MindFormers parameter names -> Hugging Face's, per model family.

Every family the project supports is a Llama in MindFormers' naming
(`model.layers.N.attention.wq.weight`, `feed_forward.w1`, ...): Llama 3,
LLaMA and InternLM (which adds biases on q, k, v and o). The map is the
inverse of the one the import applies (`mindformers.models.llama.
convert_weight.name_replace`) and equals MindFormers' own reverse converter
(`convert_reversed.name_replace`); tests/unit/pipeline/export/test_names.py
holds it to both. A name the map does not turn into one Hugging Face's Llama
has is refused, so an export never writes weights a loader would skip.
"""
import re
from typing import Dict, List, Tuple

from ..errors import SpecError
from ..mindformers.lora_merge import LORA_A, LORA_B

# MindFormers' LoRA cell name -> Hugging Face's module name (PEFT's target_modules).
HF_MODULES: Dict[str, str] = {"wq": "q_proj", "wk": "k_proj", "wv": "v_proj", "wo": "o_proj",
                              "w1": "gate_proj", "w2": "down_proj", "w3": "up_proj"}

_LLAMA: List[Tuple[str, str]] = [
    ("tok_embeddings.embedding_weight", "embed_tokens.weight"),
    (".attention.wq.", ".self_attn.q_proj."),
    (".attention.wk.", ".self_attn.k_proj."),
    (".attention.wv.", ".self_attn.v_proj."),
    (".attention.wo.", ".self_attn.o_proj."),
    (".feed_forward.w1.", ".mlp.gate_proj."),
    (".feed_forward.w2.", ".mlp.down_proj."),
    (".feed_forward.w3.", ".mlp.up_proj."),
    (".attention_norm.", ".input_layernorm."),
    (".ffn_norm.", ".post_attention_layernorm."),
    (".norm_out.", ".norm."),
]
_LLAMA_HF = re.compile(r"^(lm_head\.weight|model\.embed_tokens\.weight|model\.norm\.weight|"
                       r"model\.layers\.\d+\.(input_layernorm|post_attention_layernorm)\.weight|"
                       r"model\.layers\.\d+\.mlp\.(gate|up|down)_proj\.weight|"
                       r"model\.layers\.\d+\.self_attn\.[qkvo]_proj\.(weight|bias))$")

# family -> (renames, the names Hugging Face's model of that architecture has)
FAMILIES = {family: (_LLAMA, _LLAMA_HF) for family in ("llama3-8b", "llama-7b", "internlm-7b", "tiny-llama")}



def _family(family: str):
    if family not in FAMILIES:
        raise SpecError("spec.model.family", f"a family with a Hugging Face name map ({', '.join(FAMILIES)}); "
                                             f"{family!r} has none, so it cannot be exported")
    return FAMILIES[family]


def hf_name(family: str, name: str) -> str:
    """The Hugging Face name of a model weight; a SpecError for one the family's model does not have."""
    renames, known = _family(family)
    out = name
    for old, new in renames:
        out = out.replace(old, new)
    if not known.match(out):
        raise SpecError("spec.export", f"weights Hugging Face's {family} model has: {name} maps to {out}, "
                                       f"which it has not")
    return out


def peft_name(family: str, name: str) -> str:
    """PEFT's name of a MindFormers LoRA weight:
    model.layers.0.attention.wq.mindpet_delta_lora_a -> base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"""
    for suffix, peft in ((LORA_A, "lora_A"), (LORA_B, "lora_B")):
        if name.endswith(suffix):
            cell = hf_name(family, name[: -len(suffix)] + ".weight")[: -len(".weight")]
            return f"base_model.model.{cell}.{peft}.weight"
    raise SpecError("spec.export", f"LoRA weights named <cell>{LORA_A} or <cell>{LORA_B} (got {name})")


def target_modules(family: str, modules: List[str]) -> List[str]:
    _family(family)
    unknown = [m for m in modules if m not in HF_MODULES]
    if unknown:
        raise SpecError("spec.lora.targetModules", f"modules with a Hugging Face name ({', '.join(HF_MODULES)}); "
                                                   f"{', '.join(unknown)} has none")
    return sorted(HF_MODULES[m] for m in modules)
