"""fp16 families train with dynamic loss scaling, built by MindFormers itself."""
from pathlib import Path

import pytest
import yaml

from mathtune_pipeline.mindformers import dialect, render
from tests.specs import typed
from tests import examples

REPO = Path(__file__).resolve().parents[4]
EXAMPLES = {p.stem: p for p in examples.RUNS}


def _rendered(example: str) -> dict:
    spec = typed(yaml.safe_load(EXAMPLES[example].read_text())["spec"])
    return render.finetune_config(spec, dataset_dir="d", load_checkpoint="c", save_checkpoint_steps=1,
                                  seq_length=128)


@pytest.mark.mindspore
@pytest.mark.parametrize("example", ["seed002-internlm-mmlu-choice", "seed004-llama7b-belle-vicuna"])
def test_float16_models_get_a_dynamic_loss_scale_mindformers_builds(example):
    config = dialect.adapt(_rendered(example))
    assert config["model"]["model_config"]["compute_dtype"] == "float16"
    scale = config["runner_wrapper"]["scale_sense"]
    assert scale["type"] == "DynamicLossScaleUpdateCell"

    from mindformers.wrapper.build_wrapper import build_wrapper
    from mindspore.nn import DynamicLossScaleUpdateCell

    cell = build_wrapper(dict(scale))
    assert isinstance(cell, DynamicLossScaleUpdateCell)
    assert float(cell.get_loss_scale()) == 65536.0


@pytest.mark.parametrize("example", ["seed000-llama3-quota-cot", "seed001-llama3-counts", "run-cpu"])
def test_bfloat16_models_keep_the_seeds_fixed_scale_of_one(example):
    config = _rendered(example)
    assert config["model"]["model_config"]["compute_dtype"] == "bfloat16"
    assert config["runner_wrapper"]["scale_sense"] == 1.0
