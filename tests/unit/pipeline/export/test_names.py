"""The export's name map, held to MindFormers' own two converters: the import's
(`convert_weight.name_replace`, Hugging Face -> MindFormers) and the reverse
one (`convert_reversed.name_replace`, which needs torch to import, so its
function is read out of MindFormers' source and run alone)."""
import ast
import importlib.util
from pathlib import Path

import pytest

from mathtune_pipeline.errors import SpecError
from mathtune_pipeline.export import names


def _hf_llama_names(layers=2, bias=False):
    out = ["model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"]
    for i in range(layers):
        p = f"model.layers.{i}."
        out += [p + f"self_attn.{m}_proj.weight" for m in "qkvo"]
        out += [p + f"self_attn.{m}_proj.bias" for m in "qkvo"] if bias else []
        out += [p + f"mlp.{m}_proj.weight" for m in ("gate", "up", "down")]
        out += [p + "input_layernorm.weight", p + "post_attention_layernorm.weight"]
    return out


def _mindformers_reverse():
    spec = importlib.util.find_spec("mindformers")
    source = Path(spec.origin).parent / "models" / "llama" / "convert_reversed.py"
    tree = ast.parse(source.read_text())
    fn = next(node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "name_replace")
    scope = {}
    exec(compile(ast.Module(body=[fn], type_ignores=[]), str(source), "exec"), scope)
    return scope["name_replace"]


@pytest.mark.parametrize("family", sorted(names.FAMILIES))
def test_export_inverts_the_import_and_equals_mindformers_reverse(family):
    from mindformers.models.llama.convert_weight import name_replace as to_mindformers

    reverse = _mindformers_reverse()
    for hf in _hf_llama_names(bias=family == "internlm-7b"):
        ms = to_mindformers(hf)
        assert names.hf_name(family, ms) == hf == reverse(ms)


def test_lora_weights_get_peft_names():
    assert names.peft_name("llama3-8b", "model.layers.3.attention.wq.mindpet_delta_lora_a") == \
        "base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight"
    assert names.peft_name("llama3-8b", "model.layers.0.feed_forward.w2.mindpet_delta_lora_b") == \
        "base_model.model.model.layers.0.mlp.down_proj.lora_B.weight"
    assert names.target_modules("tiny-llama", ["wq", "wv", "w1"]) == ["gate_proj", "q_proj", "v_proj"]


def test_a_weight_hugging_face_has_not_is_refused_naming_it():
    with pytest.raises(SpecError) as err:
        names.hf_name("llama3-8b", "model.layers.0.attention.rotary.freqs")
    assert err.value.field == "spec.export" and "model.layers.0.attention.rotary.freqs" in str(err.value)
    with pytest.raises(SpecError) as err:
        names.target_modules("llama3-8b", ["wq", "dense"])
    assert err.value.field == "spec.lora.targetModules" and "dense has none" in str(err.value)
