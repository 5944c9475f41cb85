"""The MathFinetuneSweep status: the record of the search. The study is
rebuilt from `trials` on every pass, so it holds all Optuna needs: each
trial's values, state, objective and gate."""
from typing import Dict, List, Literal, Optional

from .base import ApiModel, F
from .status import KEYED, Condition, Int, Num, Time
from .vocabulary import LONG

TrialState = Literal["Running", "Succeeded", "Infeasible", "Failed", "Pruned"]


class TrialEpoch(ApiModel):
    accuracy: Num = F("Math accuracy of the epoch (0-1).", None)
    f1: Num = F("SQuAD F1 of the epoch.", None)


class SweepTrial(ApiModel):
    """One trial: a MathFinetune the sweep made."""
    number: int = F("The trial's number in the study, from 0.")
    name: str = F("Its MathFinetune (<sweep>-<number>).")
    params: Dict[str, str] = F("Each parameter's value, as JSON text, by path.", max_length=8)
    state: TrialState = F("Running, Succeeded (gate passed), Infeasible (it finished but missed the gate), Failed "
                          "(its run failed) or Pruned (early stopping suspended its run).")
    objective: Num = F("The objective's value.", None)
    math_accuracy: Num = F("status.results.mathAccuracy of the run.", None)
    math_accuracy_contest_rule: Num = F("status.results.mathAccuracyContestRule of the run.", None)
    f1: Num = F("SQuAD F1 of the run's chosen epoch.", None)
    em: Num = F("SQuAD EM of the run's chosen epoch.", None)
    gate_f1: Num = F("The F1 the gate asked for (its threshold).", None)
    gate_passed: Optional[bool] = F("Whether the run passed its gate.", None)
    best_epoch: Int = F("The run's chosen epoch.", None)
    epochs: Optional[Dict[str, TrialEpoch]] = F("Accuracy and F1 per epoch.", None, max_length=1000)
    epoch_loss: Optional[Dict[str, float]] = F("Training loss per complete epoch (its run's "
                                               "status.progress.epochLoss): what early stopping compares.", None,
                                               max_length=1000)
    grid_id: Int = F("grid: the grid point (Optuna's grid_id).", None)
    message: Optional[str] = F("Why it failed, or why it was pruned.", None, max_length=LONG)
    start_time: Optional[Time] = F("When the sweep made it.", None)
    completion_time: Optional[Time] = F("When its run ended.", None)


class Leader(ApiModel):
    number: int = F("The trial's number.")
    name: str = F("Its MathFinetune.")
    objective: Num = F("The objective's value.", None)
    math_accuracy: Num = F("Math accuracy.", None)
    f1: Num = F("SQuAD F1.", None)
    params: Optional[Dict[str, str]] = F("Its values, by path.", None, max_length=8)


class Counts(ApiModel):
    running: int = F("Trials running.", 0)
    succeeded: int = F("Trials that finished and passed the gate.", 0)
    infeasible: int = F("Trials that finished but missed the gate.", 0)
    failed: int = F("Trials whose run failed.", 0)
    pruned: int = F("Trials early stopping suspended.", 0)
    total: int = F("Trials made.", 0)


class SweepDisplay(ApiModel):
    best: Optional[str] = F("The best trial, for kubectl get.", None)
    objective: Optional[str] = F("Its objective, for kubectl get.", None)
    trials: Optional[str] = F("Trials done / maxTrials, for kubectl get.", None)


class MathFinetuneSweepStatus(ApiModel):
    """Observed state of the sweep."""
    observed_generation: Int = F("metadata.generation the status reflects.", None)
    phase: Optional[str] = F("Pending, Running, Succeeded or Failed.", None)
    start_time: Optional[Time] = F("When the first trial was made.", None)
    completion_time: Optional[Time] = F("When the sweep ended.", None)
    conditions: Optional[List[Condition]] = F(
        "Ready, Succeeded, Failed.", None, max_length=32,
        json_schema_extra={**KEYED, "x-kubernetes-list-map-keys": ["type"]})
    trials: Optional[List[SweepTrial]] = F("Every trial made, by number.", None, max_length=200,
                                           json_schema_extra={**KEYED, "x-kubernetes-list-map-keys": ["number"]})
    best: Optional[Leader] = F("The best trial so far: the best objective among those that passed the gate.", None)
    leaderboard: Optional[List[Leader]] = F("The five best trials that passed the gate, best first.", None,
                                            max_length=5)
    counts: Optional[Counts] = F("Trials by state.", None)
    display: Optional[SweepDisplay] = F("The status as people read it, for kubectl get's columns.", None)
