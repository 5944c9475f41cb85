"""The search space: each spec.parameters entry as Optuna reads it."""
from typing import Any, Dict, List

import numpy as np
from mathtune_api.sweep import MathFinetuneSweepSpec, SweepParameter
from optuna.distributions import (BaseDistribution, CategoricalDistribution, FloatDistribution,
                                  IntDistribution)


def distribution(p: SweepParameter) -> BaseDistribution:
    if p.type == "categorical":
        return CategoricalDistribution(list(p.values or []))
    assert p.low is not None and p.high is not None  # the model holds both for float and int
    if p.type == "int":
        # Optuna refuses a step with a log scale; the model's step defaults to 1.
        return IntDistribution(int(p.low), int(p.high), log=p.log, step=1 if p.log else int(p.step or 1))
    return FloatDistribution(p.low, p.high, log=p.log, step=None if p.log else p.step)


def distributions(spec: MathFinetuneSweepSpec) -> Dict[str, BaseDistribution]:
    return {p.path: distribution(p) for p in spec.parameters}


def grid_values(p: SweepParameter) -> List[Any]:
    """The points the grid tries for one parameter (the model has checked there is a step)."""
    if p.type == "categorical":
        return list(p.values or [])
    assert p.low is not None and p.high is not None
    step = p.step if p.step is not None else 1.0
    count = int((p.high - p.low) / step + 1e-9) + 1
    points = [p.low + i * step for i in range(count)]
    if p.type == "int":
        return [int(round(v)) for v in points]
    # Rounded so 0.1 + 2 * 0.1 reads 0.3, and held within the bounds, which
    # rounding can cross (low 0.6501988522454135 rounds below itself).
    return [min(max(float(np.round(v, 12)), p.low), p.high) for v in points]


def grid_space(spec: MathFinetuneSweepSpec) -> Dict[str, List[Any]]:
    return {p.path: grid_values(p) for p in spec.parameters}


def grid_size(spec: MathFinetuneSweepSpec) -> int:
    size = 1
    for values in grid_space(spec).values():
        size *= len(values)
    return size


def trial_budget(spec: MathFinetuneSweepSpec) -> int:
    """Trials the sweep makes in all: maxTrials, or fewer when a grid has fewer points."""
    if spec.algorithm == "grid":
        return min(spec.max_trials, grid_size(spec))
    return spec.max_trials
