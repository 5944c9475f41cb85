"""`run_pass`: one pass over a run, as its steps: parse its spec once (a
spec the model refuses stops the pass there: refused); read the run as its
last status left it (passes.begin); an ended run only has its Jobs deleted after
the TTL (ttl); else each unfinished stage observes its Job and pods and acts
(stage_step); then the status is published (publish) and the next pass with
no event is scheduled (requeue)."""
import time
from typing import Optional

from mathtune_api import SpecInvalid

from .. import progress
from ..metrics import METRICS, Metrics
from ..resource import Run
from ..types import ClusterView, Obj
from ..vocabulary import Phase
from .passes import Pass, Settings, begin
from .publish import publish, ready_message
from .refused import spec_refused
from .requeue import due_again
from .stage_step import next_step
from .ttl import cleanup_after_ttl, ttl_due

_THROTTLE = progress.Throttle(30.0)


def run_pass(body: Obj, cluster: ClusterView, now: Optional[float] = None, settings: Optional[Settings] = None,
             metrics: Metrics = METRICS, throttle: progress.Throttle = _THROTTLE) -> Pass:
    """Read the run's stage rows, hand the first unfinished stage to its
    case (start it, it succeeded, it failed, it is active), then record."""
    now = time.time() if now is None else now
    try:
        run = Run.of(body)
    except SpecInvalid as exc:
        return spec_refused(body, exc, now)
    # The run as the last status left it: its stages, their rows.
    p = begin(body, run, cluster, now, settings or Settings(), metrics, throttle)
    old = body.get("status") or {}
    phase = old.get("phase") or Phase.PENDING
    current = old.get("stage") or p.stages[0]

    if phase in (Phase.SUCCEEDED, Phase.FAILED):
        # An ended run: its Jobs go after the TTL; the status is refreshed.
        cleanup_after_ttl(run, cluster, p.new, p.now, p.out)
        publish(p, phase, current, ready_message(old), None)
        p.out.requeue_after = ttl_due(run, p.new, p.now)
        return p.out

    # Observe each unfinished stage's Job and pods and act on them, in order,
    # until one is not done; then publish what the pass decided.
    current, step = next_step(p)
    publish(p, step.phase, current, step.message, step.blocked)
    p.out.requeue_after = due_again(run, p.new, step.blocked, p.now, p.settings)
    return p.out
