"""The MathFinetuneSweep spec: a search over MathFinetune recipes for the best
math accuracy whose run keeps its original ability (the gate), each trial a
MathFinetune the sweep owns."""
from typing import Annotated, List, Literal, Optional, Union

from pydantic import field_validator, model_validator

from .base import ApiModel, F, block
from .schema import Raw
from .spec import MathFinetuneSpec
from .sweep_paths import is_tunable, path_pattern
from .vocabulary import rule

MAX_PARAMETERS = 8
PATH_RULE = rule(f"self.path.matches(r'{path_pattern()}')",
                 "spec.parameters[].path must name a field under data, lora or training of the MathFinetune spec "
                 "(docs/api.md), e.g. training.lrSchedule.learningRate, data.mix[0].share, lora.targetModules",
                 ".path")
# Typed so the API server's rules can count them (CEL cannot see an untyped
# value): integers or text, each read as the field's type (sweep_values.py).
VALUES_SCHEMA = {"type": "array", "minItems": 1, "maxItems": 32,
                 "description": "categorical: the values tried, each read as the field's type: 2, \"1e-4\", "
                                "\"true\", \"bucketed\", \"[wq, wv]\" (decimals and lists as strings).",
                 "items": {"x-kubernetes-int-or-string": True}}


def _whole(field: str) -> str:
    """CEL: the optional number `field` is absent or a whole number."""
    name = field.split(".")[-1]
    return (f"(!has(self.{name}) || {field} > 9.0e15 || {field} < -9.0e15 || double(int({field})) == {field})")


def _is_whole(value: Optional[float]) -> bool:
    return value is None or float(value).is_integer()


class SweepParameter(ApiModel):
    """One field of the template searched by the sweep."""
    RULES = [
        PATH_RULE,
        rule("self.type != 'categorical' || (has(self.values) && size(self.values) > 0)",
             "spec.parameters[].values: a categorical parameter needs at least one value", ".values"),
        rule("self.type == 'categorical' || (has(self.low) && has(self.high) && self.low < self.high)",
             "spec.parameters[].low must be below spec.parameters[].high (float and int parameters need both)",
             ".low"),
        rule("!self.log || (self.type != 'categorical' && has(self.low) && self.low > 0.0)",
             "spec.parameters[].log: a log scale needs a float or int parameter with low > 0", ".log"),
        rule("!has(self.step) || self.type != 'categorical'",
             "spec.parameters[].step: only float and int parameters have a step", ".step"),
        # Whole numbers: double(int(x)) == x. Beyond 9e15 every double is whole
        # already, and int() of a larger one would be an evaluation error.
        rule(f"self.type != 'int' || ({_whole('self.low')} && {_whole('self.high')})",
             "spec.parameters[].low and high of an int parameter are whole numbers", ".low"),
        rule(f"self.type != 'int' || !has(self.step) || (self.step >= 1.0 && {_whole('self.step')})",
             "spec.parameters[].step of an int parameter is a whole number, at least 1", ".step"),
    ]
    path: str = F("The field searched, as a path in the MathFinetune spec: training.lrSchedule.learningRate, "
                  "data.mix[0].share (the item must exist in the template), lora.targetModules.", min_length=1,
                  max_length=253)
    type: Literal["float", "int", "categorical"] = F("float or int between low and high, or categorical values.")
    low: Optional[float] = F("Lowest value (float, int).", None)
    high: Optional[float] = F("Highest value (float, int), above low.", None)
    log: bool = F("Sample on a log scale (learning rates); needs low > 0.", False)
    step: Optional[float] = F("Spacing of the values tried (float, int; int defaults to 1). The grid algorithm needs "
                              "it for float parameters.", None, gt=0)
    values: Annotated[Optional[List[Union[int, str]]], Raw(VALUES_SCHEMA)] = None

    @field_validator("path")
    @classmethod
    def _path_exists(cls, path: str) -> str:
        if not is_tunable(path):
            raise ValueError(PATH_RULE["message"])
        return path

    @model_validator(mode="after")
    def _bounds(self) -> "SweepParameter":
        if self.type == "categorical":
            if not self.values:
                raise ValueError(self.RULES[1]["message"])
            if self.step is not None:
                raise ValueError(self.RULES[4]["message"])
            return self
        if self.low is None or self.high is None or not self.low < self.high:
            raise ValueError(self.RULES[2]["message"])
        if self.type == "int" and not (_is_whole(self.low) and _is_whole(self.high)):
            raise ValueError(self.RULES[5]["message"])
        if self.type == "int" and not (self.step is None or (self.step >= 1 and _is_whole(self.step))):
            raise ValueError(self.RULES[6]["message"])
        if self.log and self.low <= 0:
            raise ValueError(self.RULES[3]["message"])
        return self

    def grid_points(self) -> Optional[int]:
        """How many values the grid tries; None: a float without a step (no grid)."""
        if self.type == "categorical":
            return len(self.values or [])
        step = self.step if self.step is not None else (1.0 if self.type == "int" else None)
        if step is None or self.low is None or self.high is None:
            return None
        return int((self.high - self.low) / step + 1e-9) + 1


class Objective(ApiModel):
    metric: Literal["mathAccuracy", "mathAccuracyContestRule", "f1", "em"] = F(
        "The trial's figure to optimise, from its status.results: mathAccuracy (the answer a careful grader reads), "
        "mathAccuracyContestRule (the contest's last-number rule), f1 or em (SQuAD, the original ability).",
        "mathAccuracy")
    direction: Literal["maximize", "minimize"] = F("maximize or minimize the metric.", "maximize")


class Constraints(ApiModel):
    gate: bool = F("A trial counts only when its run passes its original-ability gate (status.results.gatePassed; "
                   "spec.evaluation.gate of the template): a trial that does not is Infeasible, and Optuna's sampler "
                   "treats the gate as a constraint.", True)


class EarlyStopping(ApiModel):
    """Optuna's MedianPruner over the trials' per-epoch training loss."""
    metric: Literal["trainingLoss"] = F(
        "The per-epoch figure compared: trainingLoss, the mean logged loss of each epoch (status.progress.epochLoss "
        "of the trial). It is the figure that exists while a trial trains: its math accuracy and F1 exist only once "
        "its predict and evaluate stages have scored every epoch.", "trainingLoss")
    min_trials: int = F("Finished trials of the same data recipe needed before any trial is pruned (Optuna's "
                        "n_startup_trials).", 2, ge=1, le=200)
    min_epochs: int = F("Epochs a trial trains before it can be pruned (Optuna's n_warmup_steps).", 1, ge=1, le=1000)


def _grid_size_expression() -> str:
    """The grid's size in CEL, which has no fold: one factor per possible parameter."""
    factors = []
    for i in range(MAX_PARAMETERS):
        p = f"self.parameters[{i}]"
        points = (f"({p}.type == 'categorical' ? size({p}.values) : "
                  f"int(({p}.high - {p}.low) / ({p}.type == 'int' && !has({p}.step) ? 1.0 : {p}.step)) + 1)")
        factors.append(f"(size(self.parameters) > {i} ? {points} : 1)")
    return " * ".join(factors)


class MathFinetuneSweepSpec(ApiModel):
    """A search over MathFinetune recipes: Optuna proposes each trial's values, every trial is a MathFinetune the
    sweep owns, and the best trial is the one with the best objective among those that pass the gate."""
    RULES = [
        rule("self.algorithm != 'grid' || self.parameters.all(p, p.type != 'float' || has(p.step))",
             "spec.parameters[].step: the grid algorithm needs a step for every float parameter", ".parameters"),
        rule(f"self.algorithm != 'grid' || self.partialGrid || !self.parameters.all(p, p.type != 'float' || "
             f"has(p.step)) || {_grid_size_expression()} <= self.maxTrials",
             "spec.maxTrials: the grid has more points than maxTrials; raise maxTrials, or set partialGrid: true to "
             "search only maxTrials of them", ".maxTrials"),
        # What the study was built from: changing it would make the trials so far answers to another question.
        rule("self.template == oldSelf.template", "spec.template is immutable once the sweep exists: its trials "
             "were made from it; create a new MathFinetuneSweep instead", ".template"),
        rule("self.algorithm == oldSelf.algorithm && self.seed == oldSelf.seed && self.objective == oldSelf.objective "
             "&& self.constraints == oldSelf.constraints && self.parameters == oldSelf.parameters",
             "spec.parameters, algorithm, seed, objective and constraints are immutable once the sweep exists: "
             "create a new MathFinetuneSweep instead"),
    ]
    template: MathFinetuneSpec = F("The spec every trial starts from; each trial sets the parameters' fields in it. "
                                   "Trials share its storage: give storage.pvcName so each data recipe is prepared "
                                   "once for all of them.")
    parameters: List[SweepParameter] = F(
        "The fields searched (1 to 8), each path at most once.", min_length=1, max_length=MAX_PARAMETERS,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["path"]})
    objective: Objective = block("What the sweep optimises.", Objective)
    constraints: Constraints = block("What a trial must meet to count.", Constraints)
    algorithm: Literal["grid", "random", "tpe"] = F(
        "Optuna's sampler: grid (every combination, in a seeded order), random, or tpe (Tree-structured Parzen "
        "Estimator, learning from the finished trials, with the gate as a constraint).", "tpe")
    max_trials: int = F("Trials in all.", 8, ge=1, le=200)
    parallelism: int = F("Trials running at once.", 2, ge=1, le=32)
    max_failed_trials: int = F("Failed trials (a run that failed, not one that missed the gate) after which the "
                               "sweep stops starting trials and fails.", 3, ge=0, le=200)
    partial_grid: bool = F("grid: allow a grid larger than maxTrials (only maxTrials of its points are tried).",
                           False)
    seed: int = F("Seed of the sampler: the same seed proposes the same trials.", 0, ge=0, le=2 ** 31 - 1)
    early_stopping: Optional[EarlyStopping] = F(
        "Prune a running trial whose training loss, at an epoch it completed, is above the median of the finished "
        "trials of the same data recipe at that epoch (losses of different data are not comparable). A pruned "
        "trial's run is suspended (spec.runPolicy.suspend, its checkpoints kept) and counts as done. Absent: no "
        "pruning.", None)

    @model_validator(mode="after")
    def _grid(self) -> "MathFinetuneSweepSpec":
        if self.algorithm != "grid":
            return self
        size = 1
        for p in self.parameters:
            points = p.grid_points()
            if points is None:
                raise ValueError(self.RULES[0]["message"])
            size *= points
        if size > self.max_trials and not self.partial_grid:
            raise ValueError(self.RULES[1]["message"])
        return self

