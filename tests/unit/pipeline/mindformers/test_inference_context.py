"""The MindSpore context evaluate and predict run in: the rendered config's, on every device."""
from pathlib import Path

import pytest
import yaml

from mathtune_pipeline.mindformers import cpu, dialect, inference, render
from tests.specs import typed
from tests import examples

REPO = Path(__file__).resolve().parents[4]


def _inference_config(example: str, seq_length: int = 512):
    spec = typed(yaml.safe_load((REPO / "examples" / example).read_text())["spec"])
    finetune = dialect.adapt(render.finetune_config(spec, dataset_dir="d", load_checkpoint="c",
                                                    save_checkpoint_steps=1, seq_length=seq_length))
    if spec.profile == "cpu":
        finetune = cpu.cpu_profile(finetune)
    return spec, render.inference_config(finetune, run_mode="predict", load_checkpoint="merged.ckpt",
                                         max_new_tokens=20, use_past=spec.profile != "cpu")


def test_the_ascend_profile_gets_graph_mode_and_its_memory_bound():
    spec, config = _inference_config("seed000-llama3-quota-cot.yaml")
    got = inference.context_kwargs(config)
    assert got["mode"] == 0 and got["device_target"] == "Ascend"
    assert got["max_device_memory"] == spec.training.max_device_memory == "58GB"
    assert got["device_id"] == 0 and got["max_call_depth"] == 10000
    # Only what MindSpore's set_context takes: MindFormers' other sections stay out.
    assert set(got) <= set(inference.SET_CONTEXT_KEYS) and set(got) == set(config["context"])


def test_a_mode_given_by_name_is_mindspore_s_number():
    assert inference.context_kwargs({"context": {"mode": "PYNATIVE_MODE"}}) == {"mode": 1}
    assert inference.context_kwargs({}) == {}


@pytest.mark.mindspore
def test_the_cpu_profile_context_is_set_for_real():
    import mindspore as ms

    cpu = [p.name for p in examples.RUNS if yaml.safe_load(p.read_text())["spec"].get("profile") == "cpu"]
    assert cpu, "no CPU-profile example"
    spec, config = _inference_config(cpu[0])
    got = inference.context_kwargs(config)
    # The Ascend context but the device: MindSpore ignores max_device_memory on CPU (a warning).
    assert got["device_target"] == "CPU" and got["max_device_memory"] == spec.training.max_device_memory
    inference.set_context(config, seed=3)
    assert ms.get_context("device_target") == "CPU" and ms.get_context("mode") == ms.GRAPH_MODE
