"""Training progress out of a MindFormers worker log (MFLossMonitor's lines).

MFLossMonitor prints two lines per logged step:

    ... - INFO - { Epoch:[  1/  5], step:[    4/  234], loss: 1.361, per_step_time: 3256ms, lr: 8.571428e-06, ...
    ... - INFO -    0.3% |     | 4.91346 samples/s/p  1:03:16 }

MindFormers r1.1 prints `loss: x`; without sink mode, and in 1.9, it prints
`loss:[step_loss/average_loss]`. The ETA is `H:MM:SS`, or `N days, H:MM:SS`.
A line may carry terminal spinner debris before its timestamp. `Training
Over!` ends a run; `Network Parameters: N.` (r1.1) or `N M` (1.9) gives the
trainable count. `ProgressParser` is fed lines as they come (tailing a log)
and hands back a `Step` once a step's second line completes it.
"""
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Dict, Iterable, Iterator, List, Optional

_STEP = re.compile(
    r"\{ Epoch:\[\s*(?P<epoch>\d+)/\s*(?P<epochs>\d+)\], step:\[\s*(?P<step>\d+)/\s*(?P<steps>\d+)\], "
    r"loss:\s*(?:\[(?P<step_loss>[^/\]]+)/(?P<avg_loss>[^\]]+)\]|(?P<loss>[^,\s]+)), "
    r"per_step_time: (?P<ms>\d+(?:\.\d+)?)ms, lr: (?P<lr>[^,\s]+)"
    r"(?:, overflow cond: (?P<overflow>True|False))?(?:, loss_scale: (?P<scale>[^,\s]+))?"
    r"(?:, global_norm: \[(?P<norm>[^\]]+)\])?"
)
_RATE = re.compile(
    r"(?P<pct>\d+(?:\.\d+)?)% \|[^|]*\| (?P<rate>\d+(?:\.\d+)?) samples/s/p\s+"
    r"(?:(?P<days>\d+) days?, )?(?P<h>\d+):(?P<m>\d\d):(?P<s>\d\d) \}"
)
_PARAMS = re.compile(r"Network Parameters: (?P<n>\d+(?:\.\d+)?)(?P<unit> M)?\.?")
_OVER = "Training Over"


@dataclass
class Step:
    epoch: int
    epochs: int
    step: int
    steps: int
    loss: float
    avg_loss: Optional[float]
    step_time_ms: float
    lr: float
    overflow: Optional[bool] = None
    loss_scale: Optional[float] = None
    global_norm: Optional[float] = None
    percent: Optional[float] = None
    samples_per_second: Optional[float] = None
    eta_seconds: Optional[int] = None

    def progress_fields(self) -> Dict:
        """The `mathtune-progress` line's fields (docs/contract.md §3)."""
        out = {"epoch": self.epoch, "epochs": self.epochs, "step": self.step, "steps": self.steps,
               "loss": self.loss}
        if self.samples_per_second is not None:
            out["samplesPerSecond"] = self.samples_per_second
        if self.eta_seconds is not None:
            out["etaSeconds"] = self.eta_seconds
        return out


def parse_step_line(line: str) -> Optional[Step]:
    m = _STEP.search(line)
    if not m:
        return None
    if m.group("loss") is not None:
        loss, avg = float(m.group("loss")), None
    else:
        loss, avg = float(m.group("step_loss")), float(m.group("avg_loss"))
    return Step(
        epoch=int(m.group("epoch")), epochs=int(m.group("epochs")),
        step=int(m.group("step")), steps=int(m.group("steps")),
        loss=loss, avg_loss=avg, step_time_ms=float(m.group("ms")), lr=float(m.group("lr")),
        overflow=None if m.group("overflow") is None else m.group("overflow") == "True",
        loss_scale=None if m.group("scale") is None else float(m.group("scale")),
        global_norm=None if m.group("norm") is None else float(m.group("norm")),
    )


def parse_rate_line(line: str) -> Optional[Dict]:
    m = _RATE.search(line)
    if not m:
        return None
    eta = int(m.group("days") or 0) * 86400 + int(m.group("h")) * 3600 + int(m.group("m")) * 60 + int(m.group("s"))
    return {"percent": float(m.group("pct")), "samples_per_second": float(m.group("rate")), "eta_seconds": eta}


def parse_trainable_params(line: str) -> Optional[int]:
    """`Network Parameters: 4718592.` -> 4718592; 1.9's `... 3 M.` -> 3000000 (rounded by MindFormers)."""
    m = _PARAMS.search(line)
    if not m:
        return None
    value = float(m.group("n"))
    return int(round(value * 1_000_000)) if m.group("unit") else int(value)


@dataclass
class ProgressParser:
    """Feed log lines; get back completed `Step`s. Remembers what the run said about itself."""

    steps: List[Step] = field(default_factory=list)
    trainable_params: Optional[int] = None
    finished: bool = False
    _pending: Optional[Step] = None

    def feed(self, line: str) -> Optional[Step]:
        step = parse_step_line(line)
        if step is not None:
            # A step line whose rate line never came is still a step.
            done = self._complete()
            self._pending = step
            return done
        rate = parse_rate_line(line)
        if rate is not None and self._pending is not None:
            for key, value in rate.items():
                setattr(self._pending, key, value)
            return self._complete()
        if _OVER in line:
            self.finished = True
            return self._complete()
        params = parse_trainable_params(line)
        if params is not None:
            self.trainable_params = params
        return None

    def flush(self) -> Optional[Step]:
        """The last step line, when the log ends before its rate line."""
        return self._complete()

    def _complete(self) -> Optional[Step]:
        step, self._pending = self._pending, None
        if step is not None:
            self.steps.append(step)
        return step


def epoch_losses(steps: List[Step], finished: bool = False) -> Dict[int, float]:
    """The mean of the logged step losses of each complete epoch: one a later
    epoch's step follows, whose last step was logged, or every epoch once the
    run said `Training Over` (`finished`). A sweep's early stopping compares
    these. An epoch with a non-finite loss is left out: the run's
    lossNonFinite says so, and no JSON number can."""
    by_epoch: Dict[int, List[float]] = {}
    last: Dict[int, bool] = {}
    for step in steps:
        by_epoch.setdefault(step.epoch, []).append(step.loss)
        last[step.epoch] = last.get(step.epoch, False) or step.step >= step.steps
    newest = max(by_epoch, default=0)
    out = {}
    for epoch, losses in sorted(by_epoch.items()):
        complete = finished or epoch < newest or last[epoch]
        mean = sum(losses) / len(losses)
        if complete and math.isfinite(mean):
            out[epoch] = mean
    return out


def epoch_loss_fields(steps: List[Step], finished: bool = False) -> Dict[str, float]:
    """epoch_losses as the progress line and the train result carry them: {"1": 0.9906}."""
    return {str(epoch): round(loss, 6) for epoch, loss in epoch_losses(steps, finished).items()}


def parse_lines(lines: Iterable[str]) -> Iterator[Step]:
    parser = ProgressParser()
    for line in lines:
        step = parser.feed(line)
        if step is not None:
            yield step
    last = parser.flush()
    if last is not None:
        yield last


def as_dict(step: Step) -> Dict:
    return asdict(step)
