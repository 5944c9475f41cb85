"""The optimizer MindFormers builds accepts the parallel settings rendered for it.

On Ascend, MindSpore's Optimizer raises "parallel optimizer only support
optimizer 'Lamb' and 'AdamWeightDecay' and 'AdaFactor'" when the parallel
optimizer is on in data-parallel mode (parallel_mode 0) and the optimizer
class does not declare support (nn/optim/optimizer.py,
`_use_parallel_optimizer`). No NPU is here, so the rule is checked against
the real classes MindFormers registers, for every example's rendered config
in the installed MindFormers' vocabulary.
"""
from pathlib import Path

import pytest
import yaml

from mathtune_pipeline.mindformers import dialect, render
from tests.specs import typed
from tests import examples

REPO = Path(__file__).resolve().parents[4]
EXAMPLES = examples.RUNS


def _optimizer_class(optimizer: dict):
    """The class MindFormers instantiates for an `optimizer` config: its
    registered `AdamW` is a factory returning BasicAdamW or FusedAdamW."""
    from mindformers.tools.register import MindFormerModuleType, MindFormerRegister

    import mindformers.core.optim  # noqa: F401 - registers the optimizers

    cls = MindFormerRegister.get_cls(MindFormerModuleType.OPTIMIZER, optimizer["type"])
    if hasattr(cls, "get_actual_adamw_cls"):
        cls = cls.get_actual_adamw_cls(optimizer.get("use_fused", False))
    return cls


def _unsupported(config: dict) -> bool:
    """What raises on Ascend: the parallel optimizer on in data-parallel mode with an optimizer
    class that does not declare support for it."""
    parallel = config["parallel"]
    data_parallel_mode = config["use_parallel"] and parallel["parallel_mode"] == 0
    return bool(data_parallel_mode and parallel["enable_parallel_optimizer"]
                and not getattr(_optimizer_class(config["optimizer"]), "_support_parallel_optimizer", False))


def _adapted(example: Path) -> dict:
    spec = typed(yaml.safe_load(example.read_text())["spec"])
    seeds = render.finetune_config(spec, dataset_dir="d", load_checkpoint="c", save_checkpoint_steps=1,
                                   seq_length=128)
    return dialect.adapt(seeds)


@pytest.mark.mindspore
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_data_parallel_runs_never_enable_an_unsupported_parallel_optimizer(example):
    assert not _unsupported(_adapted(example)), (
        f"{example.name}: the parallel optimizer in data-parallel mode with an optimizer that raises on Ascend")


@pytest.mark.mindspore
def test_the_rule_sees_the_combination_that_raises():
    """The check above can fail: a data-parallel example's config with the parallel optimizer
    turned back on (as the seeds' configs have it, before adapt turns it off for AdamW) is caught."""
    data_parallel = [e for e in EXAMPLES if _adapted(e)["use_parallel"] and _adapted(e)["parallel"]["parallel_mode"] == 0]
    assert data_parallel, "no example trains in data-parallel mode: the rule above checks nothing"
    config = _adapted(data_parallel[0])
    config["parallel"]["enable_parallel_optimizer"] = True
    assert _unsupported(config)
