"""status.progress: the newest progress line of a stage pod's log while the
stage runs (read at most once per throttle interval), and training's final
state once it is over."""
import logging
from typing import List

from kubernetes.client.exceptions import ApiException

from .. import observe, progress
from ..types import Obj
from .passes import Context

# The package's logger: the name it had before reconcile became a package.
log = logging.getLogger(__package__)


def read_progress(p: Context, stage: str, pods: List[Obj]) -> None:
    pod = observe.progress_pod(pods)
    if pod is None:
        return
    name = pod["metadata"]["name"]
    if not p.throttle.due(f"{p.ns}/{name}", p.now):
        return
    try:
        text = p.cluster.pod_log_tail(p.ns, name, p.settings.log_tail_lines)
    except ApiException as exc:
        # No log yet (container starting) or the node cannot serve it: try later.
        log.debug("no log for %s/%s: %s", p.ns, name, exc.reason)
        return
    line = progress.newest(text)
    if line is None:
        return
    fresh = progress.to_status(stage, line, p.now_iso)
    status = p.new
    merged = dict(status.get("progress") or {})
    for key in ("epoch", "epochs", "step", "steps", "samplesPerSecond", "etaSeconds", "percent"):
        merged.pop(key, None)
    merged.update(fresh)
    if stage == "train":
        progress.merge_epoch_losses(merged, line.get("epochLoss"))
    status["progress"] = merged


def train_done(status: Obj, result: Obj) -> None:
    """Training is over: the progress line becomes its final state."""
    prog = dict(status.get("progress") or {})
    if isinstance(result.get("finalLoss"), (int, float)):
        progress.finite_loss(prog, result["finalLoss"])
    progress.merge_epoch_losses(prog, result.get("epochLoss"))  # lines the throttled reads missed
    epochs = result.get("epochs")
    if isinstance(epochs, int):
        prog.update(epoch=epochs, epochs=epochs)
    prog.update(stage="train", percent=100.0, summary=f"train done ({epochs} epochs)" if epochs else "train done")
    prog.pop("etaSeconds", None)
    status["progress"] = prog
