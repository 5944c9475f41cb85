"""One reconcile pass of a run: observe its current stage, record, act.

Level-triggered: everything is derived from the run's status, its Jobs and
their pods, so a pass may be repeated or interrupted at any point (operator
restart) without creating anything twice: names are deterministic and
creation tolerates "already exists". Stage results come from the stage pod's
termination message; the operator never reads the work volume.

`run_pass` returns the new status and the Events to post; the kopf handler
writes both. It does I/O only through `children.Cluster`.
"""
import copy
import datetime as _dt
import logging
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from kubernetes.client.exceptions import ApiException

from . import builders, names, observe, plan, progress, results
from . import status as st
from .errors import ForeignObject
from .metrics import METRICS, Metrics
from .types import ClusterView, Obj
from .vocabulary import EventReason, EventType, Phase, Reason, StageState

log = logging.getLogger(__name__)


@dataclass
class Event:
    type: str  # Normal | Warning
    reason: str  # CamelCase
    message: str


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


def iso(ts: float) -> str:
    return _dt.datetime.fromtimestamp(ts, _dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Optional[str]) -> Optional[float]:
    """RFC 3339 as the API server writes it ('...Z') or as the client
    serialises datetimes ('...+00:00')."""
    if not value:
        return None
    try:
        parsed = _dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_dt.timezone.utc)
    return parsed.timestamp()


def norm_time(value: Optional[str], fallback: str) -> str:
    ts = parse_time(value)
    return iso(ts) if ts is not None else fallback


def _api_reason(exc: ApiException) -> str:
    return f"{exc.status} {exc.reason}: {(exc.body or '')[:500]}"


_THROTTLE = progress.Throttle(30.0)


@dataclass
class _Pass:
    """What every case of one pass reads and writes."""
    body: Obj
    cluster: ClusterView
    settings: Settings
    metrics: Metrics
    throttle: progress.Throttle
    now: float
    out: Pass
    rows: Dict[str, Obj]
    old_rows: Dict[str, Obj]
    suspend: bool
    suspend_changed: bool

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


@dataclass(frozen=True)
class Step:
    """What a stage's case decided: go on to the next stage (its stage
    succeeded), or end the pass here with this phase and Ready message."""
    next_stage: bool = False
    phase: Phase = Phase.RUNNING
    message: str = ""
    blocked: Optional[Obj] = None


def run_pass(body: Obj, cluster: ClusterView, now: Optional[float] = None, settings: Optional[Settings] = None,
             metrics: Metrics = METRICS, throttle: progress.Throttle = _THROTTLE) -> Pass:
    """Read the run's stage rows, hand the first unfinished stage to its
    case (start it, it succeeded, it failed, it is active), then record."""
    now = time.time() if now is None else now
    settings = settings or Settings()
    spec = body.get("spec") or {}
    generation = body["metadata"].get("generation")
    old = body.get("status") or {}
    stages = plan.stages(spec)
    suspend = bool((spec.get("runPolicy") or {}).get("suspend"))
    p = _Pass(body=body, cluster=cluster, settings=settings, metrics=metrics, throttle=throttle, now=now,
              out=Pass(status=copy.deepcopy(old)), rows=st.stage_rows(body["metadata"]["name"], stages,
                                                                   old.get("stages") or []),
              old_rows={row.get("name"): row for row in old.get("stages") or []}, suspend=suspend,
              # The operator changes a Job's suspend only when the run's
              # changes: Kueue, or an administrator, may suspend or admit the
              # Job in between, and a pass must not undo that. A status from
              # before this field counts as unchanged.
              suspend_changed=suspend != bool(old.get("appliedSuspend", suspend)))
    throttle.interval = settings.progress_interval
    phase = old.get("phase") or Phase.PENDING
    current = old.get("stage") or stages[0]

    if phase in (Phase.SUCCEEDED, Phase.FAILED):
        _cleanup_after_ttl(body, cluster, p.new, now, p.out)
        _finish(p, phase, current, _ready_message(old), generation, None)
        p.out.requeue_after = _ttl_due(body, p.new, now)
        return p.out

    p.new["appliedSuspend"] = suspend
    step = Step()
    for stage in stages:
        current = stage
        if p.rows[stage].get("state") == StageState.SUCCEEDED:
            continue
        step = _stage_step(p, stage)
        if not step.next_stage:
            break
    else:
        current, step = "Done", _run_succeeded(p)

    if step.phase == Phase.FAILED:
        p.new["completionTime"] = p.now_iso
        metrics.stage_pods(p.ns, p.run, "", [])
    _finish(p, step.phase, current, step.message, generation, step.blocked)
    p.out.requeue_after = _due_again(body, p.new, step.blocked, now, settings)
    return p.out


def _stage_step(p: _Pass, stage: str) -> Step:
    """The case of one unfinished stage, from its Job and pods."""
    row, job_name = p.rows[stage], names.job(p.run, stage)
    job = p.cluster.find_job(p.ns, job_name)
    if job is None:
        return _start_stage(p, stage, row, job_name)
    owners = [o.get("uid") for o in (job.get("metadata") or {}).get("ownerReferences") or []]
    if p.body["metadata"].get("uid") not in owners:
        # Same name, earlier run (deleted and re-created before garbage
        # collection finished): never take its results; wait for it to go.
        return _blocked(p, row, Reason.WAITING_FOR_OLD_JOB,
                        f"Job {job_name} belongs to an earlier run named {p.run}; waiting for it to be deleted "
                        f"(delete it by hand if it is not garbage-collected)")
    if (job.get("metadata") or {}).get("deletionTimestamp"):
        # An attempt of multi-node training being stopped: the next starts
        # once its pods are gone (so no old rank answers to a rank's name).
        return Step(message=f"stage {stage}: stopping every rank of Job {job_name} before the next attempt")
    if builders.needs_pod_group(p.body.get("spec") or {}, stage) and row.get("podGroup") != job["metadata"].get("uid"):
        blocked = _ensure_pod_group(p, stage, row, job)
        if blocked:
            return blocked
    _apply_suspend(p, stage, job, job_name)
    pods = p.cluster.job_pods(p.ns, job_name)
    seen = observe.outcome(job, pods)
    if plan.is_multi_node(p.body.get("spec") or {}, stage):
        # Each Job of multi-node training is one attempt of every rank.
        seen["attempts"] = observe.job_attempt(job)
    row["jobName"] = job_name
    if not row.get("startTime"):
        # A Job no status knew of: the operator stopped right after creating it.
        p.event(EventType.NORMAL, EventReason.STAGE_STARTED, f"stage {stage}: created Job {job_name}")
    row["startTime"] = row.get("startTime") or norm_time(seen.get("startTime"), p.now_iso)
    p.new.setdefault("startTime", row["startTime"])
    if seen["state"] == StageState.SUCCEEDED and observe.result_pod(pods) is None:
        if observe.result_lost(pods):
            return _result_lost(p, stage, row, job, job_name)
        # Our view of its pod lags behind the Job controller's (separate
        # watch streams); the pod's Succeeded update wakes this run again,
        # in well under a second. The status says what it said: a patch
        # here would be one more write per stage for nothing a user sees.
        return Step(message=_ready_message(p.body.get("status") or {}))
    if seen["state"] == StageState.SUCCEEDED:
        return _stage_succeeded(p, stage, row, seen)
    if seen["state"] == StageState.FAILED:
        if row.get("state") == StageState.RETRYING and int(row.get("attempts") or 1) > seen["attempts"]:
            # This failed attempt is being stopped already; our view of its
            # Job has not caught up with the deletion yet.
            return Step(message=f"stage {stage}: stopping every rank of Job {job_name} before the next attempt")
        if _attempts_left(p, stage, seen):
            return _restart_whole(p, stage, row, job, seen)
        _stage_failed(p, row, stage, seen, seen["message"], seen.get("reason") or "Failed")
        return Step(phase=Phase.FAILED, message=row["message"])
    return _stage_active(p, stage, row, job, seen, pods)


def _ensure_pod_group(p: _Pass, stage: str, row: Obj, job: Obj) -> Optional[Step]:
    """The Job's PodGroup, made once the Job (its owner) exists: its pods
    wait for it, unscheduled, until it does. The row remembers for which
    Job it was made, so later passes make no call."""
    group = builders.pod_group(p.body, stage, job)
    try:
        if p.cluster.ensure(group):
            p.event(EventType.NORMAL, EventReason.CREATED, f"created PodGroup {group['metadata']['name']} "
                                                           f"(minMember {group['spec']['minMember']})")
    except ForeignObject as exc:
        return _blocked(p, row, Reason.WAITING_FOR_OLD_OBJECT,
                        f"{exc.kind} {exc.name} belongs to an earlier Job of the same name; waiting for it to be "
                        f"deleted")
    except ApiException as exc:
        p.metrics.reconcile_errors.labels(Reason.CREATE_JOB_FAILED).inc()
        return _blocked(p, row, Reason.CREATE_JOB_FAILED,
                        f"cannot create PodGroup {group['metadata']['name']} (is Volcano installed?): "
                        f"{_api_reason(exc)}")
    row["podGroup"] = job["metadata"].get("uid")
    return None


# Why a Job of multi-node training failed when a rank did (builders._retry_policy);
# any other reason (exit code 2, the deadline) is final.
RANK_FAILED = frozenset({"MaxFailedIndexesExceeded", "FailedIndexes", "BackoffLimitExceeded"})


def _attempt_limit(p: _Pass) -> int:
    """Attempts a stage gets: the first and runPolicy.backoffLimit more."""
    return 1 + int(((p.body.get("spec") or {}).get("runPolicy") or {}).get("backoffLimit", 2))


def _attempts_left(p: _Pass, stage: str, seen: Obj) -> bool:
    return plan.is_multi_node(p.body.get("spec") or {}, stage) and seen.get("reason") in RANK_FAILED \
        and seen["attempts"] < _attempt_limit(p)


def _restart_whole(p: _Pass, stage: str, row: Obj, job: Obj, seen: Obj) -> Step:
    """A rank of multi-node training failed and the Job with it: stop every
    rank (the Job is deleted, in the foreground) and let the next pass start
    the next attempt, which resumes from the last checkpoint every rank
    completed (--resume auto)."""
    failed, nxt, limit = seen["attempts"], seen["attempts"] + 1, _attempt_limit(p)
    p.cluster.delete_job(p.ns, job["metadata"]["name"], (job.get("metadata") or {}).get("uid"), foreground=True)
    p.metrics.stage_retries.labels(stage).inc()
    message = f"attempt {failed} failed: {seen['message'] or 'a rank failed'}"
    row.update(state=StageState.RETRYING, attempts=nxt, message=message[:4000])
    p.event(EventType.WARNING, EventReason.STAGE_RETRYING,
            f"stage {stage}: {message[:800]}; every rank is stopped and attempt {nxt} of {limit} resumes from "
            f"the last checkpoint every rank completed")
    return Step(message=f"stage {stage} retrying (attempt {nxt} of {limit})")


def _start_stage(p: _Pass, stage: str, row: Obj, job_name: str) -> Step:
    if p.suspend:
        row["state"] = StageState.SUSPENDED
        return Step(phase=Phase.SUSPENDED, message=f"suspended before stage {stage} started")
    try:
        # What every stage pod mounts, made (if absent) just before a stage
        # Job needs it: passes that only watch a Job make no calls.
        started = any(r.get("startTime") for r in p.rows.values())
        for child in _prerequisites(p.body, stage, started):
            if p.cluster.ensure(child):
                p.event(EventType.NORMAL, EventReason.CREATED, f"created {child['kind']} {child['metadata']['name']}")
        created = p.cluster.ensure(builders.job(p.body, stage, attempt=max(1, int(row.get("attempts") or 1))))
    except ForeignObject as exc:
        # Same name, earlier run, not yet garbage-collected: its spec
        # ConfigMap would run this run's stages with the old recipe.
        return _blocked(p, row, Reason.WAITING_FOR_OLD_OBJECT,
                        f"{exc.kind} {exc.name} belongs to an earlier run named {p.run}; waiting for it to be "
                        f"deleted (delete it by hand if it is not garbage-collected)")
    except ApiException as exc:
        # The error counter counts every try; the Event is posted once.
        p.metrics.reconcile_errors.labels(Reason.CREATE_JOB_FAILED).inc()
        started = any(r.get("state") == StageState.SUCCEEDED for r in p.rows.values())
        return _blocked(p, row, Reason.CREATE_JOB_FAILED,
                        f"cannot create the {stage} stage's objects (Job {job_name}): {_api_reason(exc)}",
                        phase=Phase.RUNNING if started else Phase.PENDING)
    if created and row.get("state") == StageState.RETRYING:
        # The next attempt of multi-node training (_restart_whole said so).
        p.event(EventType.NORMAL, EventReason.STAGE_STARTED,
                f"stage {stage}: created Job {job_name}, attempt {row.get('attempts')}")
    elif created and row.get("startTime"):
        # The stage had started: someone deleted its Job (or the operator
        # did, its result being lost). It runs again.
        p.event(EventType.WARNING, EventReason.STAGE_RESTARTED, f"stage {stage}: Job {job_name} was gone; "
                                                                f"created it again")
    elif created or not row.get("startTime"):
        # Also when the Job exists but no status recorded its start: the
        # operator stopped between creating it and writing status.
        p.event(EventType.NORMAL, EventReason.STAGE_STARTED, f"stage {stage}: created Job {job_name}")
    retrying = row.get("state") == StageState.RETRYING
    row.update(state=StageState.RETRYING if retrying else StageState.RUNNING, jobName=job_name,
               attempts=max(1, int(row.get("attempts") or 0)), startTime=row.get("startTime") or p.now_iso)
    if not retrying:
        row.pop("message", None)
    p.new.setdefault("startTime", p.now_iso)
    return Step(message=_attempt_message(stage, row["state"], row["attempts"]))


def _attempt_message(stage: str, state: str, attempts: int) -> str:
    """Ready's message while a stage's attempt lives. The pass that creates
    the Job says what the next pass, seeing it, would: else that pass writes
    the whole run again for a rewording."""
    return f"stage {stage} {state.lower()} (attempt {attempts})"


def _apply_suspend(p: _Pass, stage: str, job: Obj, job_name: str) -> None:
    job_finished = observe.outcome(job, [])["state"] in (StageState.SUCCEEDED, StageState.FAILED)
    if job_finished or not p.suspend_changed:
        return
    if builders.local_queue(p.body.get("spec") or {}):
        # Kueue owns the Job's suspend; the run's goes to its Workload.
        workload = p.cluster.workload_of(p.ns, str(job["metadata"].get("uid")))
        if workload is None:
            return  # not queued yet: Kueue will make it, from the Job as it is
        p.cluster.set_workload_active(p.ns, workload["metadata"]["name"], not p.suspend)
        p.event(EventType.NORMAL, EventReason.SUSPENDED if p.suspend else EventReason.RESUMED,
                f"stage {stage}: Workload {workload['metadata']['name']} "
                f"{'deactivated: Kueue stops its pods' if p.suspend else 'active again: it queues for admission'}")
        return
    if bool((job.get("spec") or {}).get("suspend")) == p.suspend:
        return
    p.cluster.set_job_suspend(p.ns, job_name, p.suspend)
    job.setdefault("spec", {})["suspend"] = p.suspend
    p.event(EventType.NORMAL, EventReason.SUSPENDED if p.suspend else EventReason.RESUMED,
            f"stage {stage}: Job {job_name} {'suspended: its pods are stopped' if p.suspend else 'resumed'}")


def _result_lost(p: _Pass, stage: str, row: Obj, job: Obj, job_name: str) -> Step:
    """The Job completed but its pod, whose termination message is the
    result, was deleted before a pass read it: run the stage again."""
    p.cluster.delete_job(p.ns, job_name, (job.get("metadata") or {}).get("uid"))
    row.update(state=StageState.RUNNING,
               message=f"the result of Job {job_name} was lost with its pod; running the stage again")
    if row["message"] != (p.old_rows.get(stage) or {}).get("message"):
        p.event(EventType.WARNING, EventReason.RESULT_LOST, f"stage {stage}: {row['message']}")
    return Step(message=row["message"])


def _stage_succeeded(p: _Pass, stage: str, row: Obj, seen: Obj) -> Step:
    try:
        result = results.parse(seen["message"], stage)
        if result.get("ok") is False:
            raise results.ResultError(f"stage {stage} exited 0 but reported ok=false: {result.get('error')}")
    except results.ResultError as exc:
        _stage_failed(p, row, stage, seen, str(exc), Reason.RESULT_UNREADABLE)
        return Step(phase=Phase.FAILED, message=row["message"])
    new = p.new
    summary, new["results"] = results.apply(stage, result, new.get("results") or {})
    new["display"] = results.display(new["results"])
    row.update(state=StageState.SUCCEEDED, summary=summary, attempts=seen["attempts"],
               completionTime=norm_time(seen.get("completionTime"), p.now_iso))
    row.pop("message", None)
    if stage == "prepare":
        _check_volume(p)
        _report_leakage(p)
    if stage == "train":
        _train_done(new, result)
    elif stage in plan.PROGRESS_STAGES and (new.get("progress") or {}).get("stage") == stage:
        # The last line read may predate the end: do not leave "50%" behind.
        prog = dict(new["progress"])
        prog.update(percent=100.0, summary=f"{stage} done")
        prog.pop("etaSeconds", None)
        new["progress"] = prog
    _observe_duration(p.metrics, stage, StageState.SUCCEEDED, row)
    p.event(EventType.NORMAL, EventReason.STAGE_SUCCEEDED, f"stage {stage}: {summary}")
    return Step(next_stage=True)


def _check_volume(p: _Pass) -> None:
    """A warning, not a failure: the estimate is an estimate, and space may
    be freed before the saves come (a condition and one Warning Event)."""
    if (p.new.get("results") or {}).get("volume") is None:
        return
    short = results.volume_shortfall(p.new["results"])
    if short:
        p.event(EventType.WARNING, Reason.VOLUME_TOO_SMALL, short)
    generation = p.body["metadata"].get("generation")
    p.new["conditions"] = st.set_condition(
        p.new.get("conditions") or [], "VolumeSufficient", "False" if short else "True",
        Reason.VOLUME_TOO_SMALL if short else Reason.VOLUME_LARGE_ENOUGH,
        short or "the work volume has room for what tokenize, train and merge will write", generation, p.now_iso)


def _report_leakage(p: _Pass) -> None:
    """One Warning Event when prepare found training rows among the scored ones: a user must
    not read a score without knowing (status.results.leakage has the counts)."""
    message = results.leakage_message((p.new.get("results") or {}).get("leakage") or {})
    if message:
        p.event(EventType.WARNING, EventReason.LEAKAGE_FOUND, message)


def _stage_active(p: _Pass, stage: str, row: Obj, job: Obj, seen: Obj, pods: List[Obj]) -> Step:
    """Running, retrying or suspended: record attempts, why it is stuck if
    it is, and its progress lines."""
    before = int(row.get("attempts") or 1)
    if seen["attempts"] > before:
        p.metrics.stage_retries.labels(stage).inc(seen["attempts"] - before)
        limit = _attempt_limit(p)
        p.event(EventType.WARNING, EventReason.STAGE_RETRYING,
                f"stage {stage}: attempt {before} failed ({seen['message'] or 'no message'}); "
                f"attempt {seen['attempts']} of {limit}"
                + ("; training resumes from its last complete checkpoint" if stage == "train" else ""))
    row.update(state=seen["state"], attempts=seen["attempts"])
    if seen["state"] == StageState.RETRYING and seen["message"]:
        row["message"] = f"attempt {seen['attempts'] - 1} failed: {seen['message']}"
    if seen["state"] == StageState.SUSPENDED and not p.suspend and builders.local_queue(p.body.get("spec") or {}):
        return _queued(p, stage, row, job)
    if QUEUED_IN_KUEUE in row.get("message", ""):
        row.pop("message")  # admitted since
    if seen["state"] == StageState.SUSPENDED:
        return Step(phase=Phase.SUSPENDED, message=f"stage {stage} suspended")
    why = observe.unschedulable(pods)
    # The question users ask most of NPU jobs: why is it Pending? Else: the
    # pod is placed but its container cannot start, in the kubelet's words.
    blocked = {"reason": Reason.UNSCHEDULABLE, "message": why} if why else observe.blocked_container(pods)
    if blocked:
        if row.get("message") != blocked["message"]:
            p.event(EventType.WARNING, blocked["reason"], f"stage {stage}: {blocked['message']}")
        row["message"] = blocked["message"]
    elif row.get("message", "").startswith("pod ") and (
            "cannot be scheduled" in row["message"] or " container " in row["message"]):
        row.pop("message")
    running = [pod["metadata"]["name"] for pod in pods if (pod.get("status") or {}).get("phase") == "Running"]
    p.metrics.stage_pods(p.ns, p.run, stage, running)
    if stage in plan.PROGRESS_STAGES:
        _read_progress(p, stage, pods)
    return Step(message=_attempt_message(stage, seen["state"], seen["attempts"]), blocked=blocked)


QUEUED_IN_KUEUE = "is queued in Kueue LocalQueue"


def _queued(p: _Pass, stage: str, row: Obj, job: Obj) -> Step:
    """A Job Kueue has not admitted: the run waits, and says for what, in
    Kueue's words (its Workload's QuotaReserved or Admitted condition)."""
    queue = builders.local_queue(p.body.get("spec") or {})
    why = "Kueue has not made its Workload yet"
    try:
        workload = p.cluster.workload_of(p.ns, str(job["metadata"].get("uid")))
    except ApiException as exc:
        workload, why = None, f"its Workload cannot be read: {_api_reason(exc)}"
    if workload is not None:
        why = observe.admission_wait(workload) or "waiting for admission"
    message = f"stage {stage}: Job {job['metadata']['name']} {QUEUED_IN_KUEUE} {queue}: {why}"
    if row.get("message") != message:
        p.event(EventType.NORMAL, Reason.QUEUED, message)
    row.update(state=StageState.PENDING, message=message)
    started = any(r.get("state") == StageState.SUCCEEDED for r in p.rows.values())
    return Step(phase=Phase.RUNNING if started else Phase.PENDING, message=message,
                blocked={"reason": Reason.QUEUED, "message": message})


def _run_succeeded(p: _Pass) -> Step:
    new = p.new
    message = (p.rows.get("report") or {}).get("summary") or "all stages succeeded"
    new["completionTime"] = p.now_iso
    new["progress"] = {**(new.get("progress") or {}), "summary": results.final_summary(new.get("results") or {})}
    new["progress"].pop("etaSeconds", None)
    p.event(EventType.NORMAL, EventReason.RUN_SUCCEEDED, f"run succeeded: {message}")
    p.metrics.stage_pods(p.ns, p.run, "", [])
    return Step(next_stage=True, phase=Phase.SUCCEEDED, message=message)


def _due_again(body: Obj, status: Obj, blocked: Optional[Obj], now: float, settings: Settings) -> Optional[float]:
    """When the run needs a pass that no watch event will cause."""
    phase = status.get("phase")
    if phase in (Phase.SUCCEEDED, Phase.FAILED):
        return _ttl_due(body, status, now)
    if blocked and blocked.get("reason") in (Reason.CREATE_JOB_FAILED, Reason.WAITING_FOR_OLD_OBJECT,
                                             Reason.WAITING_FOR_OLD_JOB):
        # A quota raised, an old object deleted: nothing we watch says when.
        return settings.blocked_retry
    if phase == Phase.RUNNING and status.get("stage") in plan.PROGRESS_STAGES:
        return settings.progress_interval  # its log's progress lines
    return settings.resync_interval


def _ttl_due(body: Obj, status: Obj, now: float) -> Optional[float]:
    ttl = int(((body.get("spec") or {}).get("runPolicy") or {}).get("ttlSecondsAfterFinished") or 0)
    done = parse_time(status.get("completionTime"))
    if ttl <= 0 or done is None or status.get("jobsDeletedAt"):
        return None
    return max(0.0, done + ttl - now)


def _blocked(p: _Pass, row: Obj, reason: str, message: str, phase: Phase = Phase.RUNNING) -> Step:
    """A stage that cannot start: its row says why, and one Warning Event is
    posted while the reason lasts (the row keeps the message), not one a pass."""
    if row.get("message") != message:
        p.event(EventType.WARNING, reason, message)
    row.update(state=StageState.PENDING, message=message)
    return Step(phase=phase, message=message, blocked={"reason": reason, "message": message})


def _prerequisites(body: Obj, stage: str, started: bool) -> List[Obj]:
    """What the stage's pods need besides their Job. The spec ConfigMap and
    the claim are made before the run's first stage starts (`started`: one
    has) and never changed after, so later stages do not ask again: at
    hundreds of runs that was a refused create and a read per stage."""
    spec = body.get("spec") or {}
    out = []
    if not started:
        out.append(builders.config_map(body))
        claim = builders.persistent_volume_claim(body)
        if claim is not None:
            out.append(claim)
    if plan.is_multi_node(spec, stage):
        out.append(builders.headless_service(body))
    return out


def _ready_message(status: Obj) -> str:
    cond = st.get_condition(status.get("conditions") or [], "Ready") or {}
    return str(cond.get("message", ""))


def _stage_failed(p: _Pass, row: Obj, stage: str, seen: Obj, pod_message: str, reason: str) -> None:
    attempts = seen.get("attempts") or 1
    why = {"BackoffLimitExceeded": "retries used up", "PodFailurePolicy": "permanent error (exit code 2)",
           "DeadlineExceeded": "activeDeadlineSeconds exceeded"}.get(reason, reason)
    message = f"stage {stage} failed after {attempts} attempt{'s' if attempts != 1 else ''} ({why}): " \
              f"{pod_message or 'the pod left no message'}"
    row.update(state=StageState.FAILED, message=message[:4000], attempts=attempts,
               completionTime=norm_time(seen.get("completionTime"), p.now_iso))
    _observe_duration(p.metrics, stage, StageState.FAILED, row)
    p.event(EventType.WARNING, EventReason.STAGE_FAILED, message[:1000])


def _observe_duration(metrics: Metrics, stage: str, result: str, row: Obj) -> None:
    start, end = parse_time(row.get("startTime")), parse_time(row.get("completionTime"))
    if start is not None and end is not None and end >= start:
        metrics.stage_duration.labels(stage, result).observe(end - start)


def _train_done(status: Obj, result: Obj) -> None:
    """Training is over: the progress line becomes its final state."""
    prog = dict(status.get("progress") or {})
    if isinstance(result.get("finalLoss"), (int, float)):
        progress.finite_loss(prog, result["finalLoss"])
    epochs = result.get("epochs")
    if isinstance(epochs, int):
        prog.update(epoch=epochs, epochs=epochs)
    prog.update(stage="train", percent=100.0, summary=f"train done ({epochs} epochs)" if epochs else "train done")
    prog.pop("etaSeconds", None)
    status["progress"] = prog


def _read_progress(p: _Pass, stage: str, pods: List[Obj]) -> None:
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
    status["progress"] = merged


def _cleanup_after_ttl(body: Obj, cluster: ClusterView, status: Obj, now: float, out: Pass) -> None:
    due = _ttl_due(body, status, now)
    if due is None or due > 0:
        return
    ttl = int(body["spec"]["runPolicy"]["ttlSecondsAfterFinished"])
    meta = body["metadata"]
    count = cluster.delete_jobs(meta["namespace"], meta["name"])
    status["jobsDeletedAt"] = iso(now)
    out.events.append(Event(EventType.NORMAL, EventReason.JOBS_DELETED,
                            f"deleted {count} Jobs {ttl}s after the run ended (ttlSecondsAfterFinished)"))


def _finish(p: _Pass, phase: str, current: str, message: str, generation: Optional[int],
            blocked: Optional[Obj]) -> None:
    new, rows = p.new, p.rows
    new["stages"] = list(rows.values())
    new["phase"] = phase
    new["stage"] = current
    if generation is not None:
        new["observedGeneration"] = int(generation)
    new["conditions"] = st.conditions_for(new.get("conditions") or [], rows, phase, current, message or "",
                                          generation, p.now_iso, blocked)
    start = parse_time((rows.get(current) or {}).get("startTime"))
    p.metrics.observe_run(p.ns, p.run, phase, current, new, start)
