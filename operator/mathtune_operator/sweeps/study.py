"""Optuna's study, rebuilt on every pass from the trials the sweep's status
records (ask/tell), so a restarted or new leader loses nothing and asks for
exactly the trial numbers not made yet.

- grid: Optuna's GridSampler gives trial n the n-th point of its seeded
  shuffle; a rebuilt trial carries its grid_id, so the sampler counts it.
- random and tpe: the sampler's seed is derived from the sweep's seed and the
  trial's number, so the trial asked again after a crash gets the same values
  whenever the history it learns from is the same.
- The gate is a constraint (Optuna's `constraints:<name>` system attribute,
  feasible when <= 0): TPE learns from it and best_trial honours it.
"""
import json
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import optuna
from mathtune_api.sweep import MathFinetuneSweepSpec
from optuna.samplers import BaseSampler, GridSampler, RandomSampler, TPESampler
from optuna.trial import TrialState, create_trial

from .space import distributions, grid_space

optuna.logging.set_verbosity(optuna.logging.WARNING)
GATE = "constraints:gate"


@dataclass(frozen=True)
class Asked:
    number: int
    params: Dict[str, Any]  # path -> Optuna's value (a number, or the categorical value as written)
    grid_id: Optional[int] = None


def _seed(spec: MathFinetuneSweepSpec, number: int) -> int:
    return (spec.seed * 1_000_003 + number) % (2 ** 31)


def sampler(spec: MathFinetuneSweepSpec, number: int) -> BaseSampler:
    if spec.algorithm == "grid":
        return GridSampler(grid_space(spec), seed=spec.seed)
    if spec.algorithm == "random":
        return RandomSampler(seed=_seed(spec, number))
    # A few random trials first, then TPE learns from them (Optuna's default is 10: too many for a short sweep).
    return TPESampler(seed=_seed(spec, number), n_startup_trials=max(2, min(10, spec.max_trials // 3)))


def _state(record: Dict[str, Any]) -> TrialState:
    return {"Succeeded": TrialState.COMPLETE, "Infeasible": TrialState.COMPLETE,
            "Failed": TrialState.FAIL, "Pruned": TrialState.PRUNED}.get(str(record.get("state")), TrialState.RUNNING)


def gate_constraint(record: Dict[str, Any]) -> float:
    """<= 0 when the trial passed its gate; else how far below it was (F1 points), at least a little."""
    if record.get("state") == "Succeeded":
        return 0.0
    short = (record.get("gateF1") or 0) - (record.get("f1") or 0)
    return max(float(short), 1e-6)


def rebuild(spec: MathFinetuneSweepSpec, records: List[Dict[str, Any]]) -> optuna.Study:
    """The study as the records left it: each trial in number order, with its
    values, state, objective and gate."""
    by_number = {int(r["number"]): r for r in records}
    study = optuna.create_study(direction=spec.objective.direction, sampler=sampler(spec, len(by_number)))
    space = distributions(spec)
    for number in range(max(by_number, default=-1) + 1):
        if number not in by_number:
            # A trial made and deleted before any pass recorded it: a failed
            # trial of no values, so the study's numbers stay the trials' own
            # and the next one asked is new.
            study.add_trial(create_trial(params={}, distributions={}, state=TrialState.FAIL))
            continue
        record = by_number[number]
        state = _state(record)
        system: Dict[str, Any] = {}
        if record.get("gridId") is not None:
            system.update(grid_id=int(record["gridId"]), search_space=grid_space(spec))
        if state == TrialState.COMPLETE and spec.constraints.gate:
            system[GATE] = gate_constraint(record)
        complete = state == TrialState.COMPLETE and record.get("objective") is not None
        study.add_trial(create_trial(
            params={path: json.loads(text) for path, text in (record.get("params") or {}).items()},
            distributions=space, state=state if complete or state != TrialState.COMPLETE else TrialState.FAIL,
            value=float(record["objective"]) if complete else None, system_attrs=system))
    return study


def ask(spec: MathFinetuneSweepSpec, records: List[Dict[str, Any]]) -> Asked:
    """The next trial's values, given every trial made so far."""
    study = rebuild(spec, records)
    trial = study.ask(distributions(spec))
    grid_id = study._storage.get_trial_system_attrs(trial._trial_id).get("grid_id") \
        if spec.algorithm == "grid" else None  # where GridSampler keeps the point it gave
    return Asked(number=trial.number, params=dict(trial.params),
                 grid_id=int(grid_id) if grid_id is not None else None)
