"""What evaluate and predict reserve is what they use.

The operator asks the device plugin for NPUs (plan.npus_for); the pipeline
renders the MindFormers config those stages run (render.inference_config).
Reserving more cards than the config uses holds NPUs idle for the whole
evaluation; fewer would crash. For every example, the two must agree.
"""
from pathlib import Path

import pytest
import yaml

from mathtune_operator import plan
from mathtune_pipeline.mindformers import render
from tests.specs import typed
from tests import examples

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = examples.RUNS


def _devices(config) -> int:
    par = config["parallel_config"]
    return par["data_parallel"] * par["model_parallel"] * par["pipeline_stage"] if config["use_parallel"] else 1


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
@pytest.mark.parametrize("stage, run_mode", [("evaluate", "eval"), ("predict", "predict")])
def test_inference_stages_reserve_the_cards_their_config_uses(example, stage, run_mode):
    spec = typed(yaml.safe_load(example.read_text())["spec"])
    # seq_length as tokenize would resolve `seqLength: auto`; it does not bear on the cards.
    finetune = render.finetune_config(spec, dataset_dir="d", load_checkpoint="c", save_checkpoint_steps=1,
                                      seq_length=128)
    config = render.inference_config(finetune, run_mode=run_mode, load_checkpoint="merged.ckpt",
                                     max_new_tokens=20, use_past=True)
    reserved = plan.npus_for(spec, stage)
    expected = _devices(config) if spec.profile == "ascend" else 0
    assert reserved == expected, f"{example.name}: {stage} reserves {reserved} NPUs, its config uses {expected}"
