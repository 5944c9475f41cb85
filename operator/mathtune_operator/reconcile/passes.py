"""What one pass is made of: its settings, its context (what every case
reads and writes), the Step a stage's case decides, and what it hands back
(the new status, Events, when to come again). Pure: no I/O of its own."""
import copy
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from kubernetes.client.exceptions import ApiException
from mathtune_api import MathFinetuneSpec

from .. import plan, progress
from .. import status as st
from ..metrics import Metrics
from ..resource import Run
from ..types import ClusterView, Event, Obj
from ..vocabulary import EventType, Phase, StageState
from .timing import iso


@dataclass
class Settings:
    progress_interval: float = 30.0  # seconds between reads of a pod log
    log_tail_lines: int = 200
    resync_interval: float = 300.0  # an active run's pass with no event, as a safety net
    blocked_retry: float = 15.0  # a refused stage (quota, admission, an old object) is tried again


@dataclass
class Pass:
    """What one pass decided."""
    status: Obj
    events: List[Event] = field(default_factory=list)
    # Seconds until the run wants another pass with no event; None: only on an event.
    requeue_after: Optional[float] = None


@dataclass
class Context:
    """What every case of one pass reads and writes."""
    body: Obj
    resource: Run  # the body's identity and typed spec
    cluster: ClusterView
    settings: Settings
    metrics: Metrics
    throttle: progress.Throttle
    now: float
    out: Pass
    stages: List[str]
    rows: Dict[str, Obj]
    old_rows: Dict[str, Obj]
    suspend: bool
    suspend_changed: bool

    @property
    def spec(self) -> MathFinetuneSpec:
        return self.resource.spec

    @property
    def new(self) -> Obj:
        return self.out.status

    @property
    def run(self) -> str:
        return str(self.body["metadata"]["name"])

    @property
    def ns(self) -> str:
        return str(self.body["metadata"]["namespace"])

    @property
    def now_iso(self) -> str:
        return iso(self.now)

    def event(self, kind: str, reason: str, text: str) -> None:
        self.out.events.append(Event(kind, reason, text))


def begin(body: Obj, resource: Run, cluster: ClusterView, now: float, settings: Settings, metrics: Metrics,
          throttle: progress.Throttle) -> Context:
    """Read the run: its planned stages, and its stage rows as the last
    status left them (the new status starts as a copy of the old)."""
    old = body.get("status") or {}
    stages = plan.stages(resource.spec)
    suspend = resource.spec.run_policy.suspend
    p = Context(body=body, resource=resource, cluster=cluster, settings=settings, metrics=metrics, throttle=throttle, now=now,
                out=Pass(status=copy.deepcopy(old)), stages=stages,
                rows=st.stage_rows(body["metadata"]["name"], stages, old.get("stages") or []),
                old_rows={row.get("name"): row for row in old.get("stages") or []}, suspend=suspend,
                # The operator changes a Job's suspend only when the run's
                # changes: Kueue, or an administrator, may suspend or admit the
                # Job in between, and a pass must not undo that. A status from
                # before this field counts as unchanged.
                suspend_changed=suspend != bool(old.get("appliedSuspend", suspend)))
    throttle.interval = settings.progress_interval
    return p


@dataclass(frozen=True)
class Step:
    """What a stage's case decided: go on to the next stage (its stage
    succeeded), or end the pass here with this phase and Ready message."""
    next_stage: bool = False
    phase: Phase = Phase.RUNNING
    message: str = ""
    blocked: Optional[Obj] = None


def blocked(p: Context, row: Obj, reason: str, message: str, phase: Phase = Phase.RUNNING) -> Step:
    """A stage that cannot start: its row says why, and one Warning Event is
    posted while the reason lasts (the row keeps the message), not one a pass."""
    if row.get("message") != message:
        p.event(EventType.WARNING, reason, message)
    row.update(state=StageState.PENDING, message=message)
    return Step(phase=phase, message=message, blocked={"reason": reason, "message": message})


def attempt_message(stage: str, state: str, attempts: int) -> str:
    """Ready's message while a stage's attempt lives. The pass that creates
    the Job says what the next pass, seeing it, would: else that pass writes
    the whole run again for a rewording."""
    return f"stage {stage} {state.lower()} (attempt {attempts})"


def api_reason(exc: ApiException) -> str:
    return f"{exc.status} {exc.reason}: {(exc.body or '')[:500]}"
