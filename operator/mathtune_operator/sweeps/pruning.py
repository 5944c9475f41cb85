"""Early stopping: whether a running trial is pruned, decided by Optuna's
MedianPruner on the trials' per-epoch training loss. Pure.

The pruner sees a study of its own, direction minimise (a loss), holding the
finished trials of the running trial's data recipe (the same values of every
`data.*` parameter): a loss is the model's fit to its training data, and two
recipes' data give losses that say nothing of each other. The sampler's study
(study.py) is not used: its direction is the objective's.
"""
from typing import Dict, List, Optional

import numpy as np
import optuna
from mathtune_api.sweep import MathFinetuneSweepSpec
from optuna.distributions import FloatDistribution
from optuna.pruners import MedianPruner
from optuna.trial import TrialState, create_trial

from ..types import Obj

FINISHED = ("Succeeded", "Infeasible")  # a run that ended with scores; a failed or pruned one did not
# Optuna needs a value for a complete trial; the pruner reads only the intermediate values.
_NO_VALUE = 0.0


def losses(record: Obj) -> Dict[int, float]:
    return {int(epoch): float(loss) for epoch, loss in (record.get("epochLoss") or {}).items()}


def data_recipe(record: Obj) -> Dict[str, str]:
    return {path: text for path, text in (record.get("params") or {}).items() if path.startswith("data.")}


def _trial(state: TrialState, epochs: Dict[int, float]) -> optuna.trial.FrozenTrial:
    return create_trial(state=state, value=_NO_VALUE if state == TrialState.COMPLETE else None, params={"_": 0.0},
                        distributions={"_": FloatDistribution(0.0, 1.0)}, intermediate_values=epochs)


def prune_reason(spec: MathFinetuneSweepSpec, record: Obj, records: List[Obj]) -> Optional[str]:
    """Why the running trial `record` is pruned, or None to let it train on."""
    rule = spec.early_stopping
    mine = losses(record)
    if rule is None or record.get("state") != "Running" or not mine:
        return None
    recipe = data_recipe(record)
    peers = [peer for peer in (losses(r) for r in records if r.get("state") in FINISHED and data_recipe(r) == recipe)
             if peer]
    study = optuna.create_study(direction="minimize")
    for peer in peers:
        study.add_trial(_trial(TrialState.COMPLETE, peer))
    pruner = MedianPruner(n_startup_trials=rule.min_trials, n_warmup_steps=rule.min_epochs)
    if not pruner.prune(study, _trial(TrialState.RUNNING, mine)):
        return None
    epoch = max(mine)
    at_epoch = [peer[epoch] for peer in peers if epoch in peer]
    return (f"pruned after epoch {epoch}: its training loss reached {min(mine.values()):.4g}, above the median "
            f"{float(np.median(at_epoch)):.4g} of {len(at_epoch)} finished trials of the same data recipe at that "
            f"epoch")
