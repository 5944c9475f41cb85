"""Progress lines: `mathtune-progress {json}` printed by train, evaluate and
predict (docs/contract.md §3), and how often the operator reads them. Pure."""
import json
import math
from typing import Any, Dict, Optional
from .types import Obj

PREFIX = "mathtune-progress "


def newest(log_text: str) -> Optional[Obj]:
    """The newest well-formed progress line of a log, or None.

    Lines may carry a logger prefix before the marker; a half-written or
    garbled line is skipped in favour of the one before it.
    """
    for line in reversed((log_text or "").splitlines()):
        at = line.find(PREFIX)
        if at < 0:
            continue
        try:
            value = json.loads(line[at + len(PREFIX):].strip())
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _int(v: Any) -> Optional[int]:
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _num(v: Any) -> Optional[float]:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def non_finite(v: Any) -> Optional[str]:
    """"NaN", "Infinity" or "-Infinity" for such a number, else None. Status
    keeps the name (JSON has no such numbers); the loss metric gets the value
    back, so the chart's loss-NaN alert can fire."""
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    return None


def finite_loss(progress: Obj, loss: Any) -> None:
    """Set progress's loss: the number when finite, else null and its name."""
    name = non_finite(_num(loss))
    progress["loss"] = None if name else _num(loss)
    if name:
        progress["lossNonFinite"] = name
    else:
        progress.pop("lossNonFinite", None)


MAX_EPOCHS = 1000  # the CRD's bound on training.epochs


def epoch_losses(value: Any) -> Dict[str, float]:
    """A line's or a result's epochLoss, keeping only what status can hold:
    epochs as keys, finite numbers as values."""
    if not isinstance(value, dict):
        return {}
    out = {}
    for epoch, loss in value.items():
        number = _num(loss)
        if str(epoch).isdigit() and 0 < int(epoch) <= MAX_EPOCHS and number is not None and math.isfinite(number):
            out[str(int(epoch))] = number
    return out


def merge_epoch_losses(progress: Obj, value: Any) -> None:
    """Add epochs to progress.epochLoss: a resumed attempt reports only the epochs it trained."""
    fresh = epoch_losses(value)
    if fresh:
        progress["epochLoss"] = {**(progress.get("epochLoss") or {}), **fresh}


def to_status(stage: str, line: Obj, now_iso: str) -> Obj:
    """status.progress from one progress line."""
    epoch, epochs = _int(line.get("epoch")), _int(line.get("epochs"))
    step, steps = _int(line.get("step")), _int(line.get("steps"))
    out = {"stage": stage, "epoch": epoch, "epochs": epochs, "step": step, "steps": steps,
           "samplesPerSecond": _num(line.get("samplesPerSecond")),
           "etaSeconds": _int(line.get("etaSeconds")), "updatedAt": now_iso}
    finite_loss(out, line.get("loss"))
    percent = None
    if epoch and epochs and steps:
        percent = 100.0 * ((epoch - 1) * steps + (step or 0)) / (epochs * steps)
    elif step is not None and steps:
        percent = 100.0 * step / steps
    if percent is not None:
        out["percent"] = round(max(0.0, min(100.0, percent)), 1)
    parts = [stage]
    if stage == "train":
        if epoch is not None and epochs:
            parts.append(f"epoch {epoch}/{epochs}")
        if step is not None and steps:
            parts.append(f"step {step}/{steps}")
    else:
        # evaluate/predict: `epoch` counts models scored, `step` questions answered.
        if isinstance(line.get("model"), str) and line["model"]:
            parts.append(line["model"][:40])
        if epoch is not None and epochs:
            parts.append(f"model {epoch}/{epochs}")
        if step is not None and steps:
            parts.append(f"question {step}/{steps}")
    if percent is not None:
        parts.append(f"{out['percent']:.1f}%")
    out["summary"] = " ".join(parts)
    return {k: v for k, v in out.items() if v is not None}


class Throttle:
    """At most one log read per `interval` seconds per key (a pod): reading a
    log is an API call that streams from the node, and kopf calls us often."""

    def __init__(self, interval: float):
        self.interval = interval
        self._last: Dict[str, float] = {}

    def due(self, key: str, now: float) -> bool:
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            return False
        self._last[key] = now
        return True

    def forget(self, key: str) -> None:
        self._last.pop(key, None)
