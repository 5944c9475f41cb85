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
from typing import Callable, List, Optional

from kubernetes.client.exceptions import ApiException

from . import builders, names, observe, plan, progress, results
from . import status as st
from .errors import ForeignObject
from .metrics import METRICS, Metrics
from .types import ClusterView, Obj

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


def run_pass(body: Obj, cluster: ClusterView, now: Optional[float] = None, settings: Optional[Settings] = None,
             metrics: Metrics = METRICS, throttle: progress.Throttle = _THROTTLE) -> Pass:
    now = time.time() if now is None else now
    settings = settings or Settings()
    now_iso = iso(now)
    meta, spec = body["metadata"], body.get("spec") or {}
    run, ns, generation = meta["name"], meta["namespace"], meta.get("generation")
    old = body.get("status") or {}
    new = copy.deepcopy(old)
    # kopf may have stored handler results in status; they are not ours.
    out = Pass(status=new)
    stages = plan.stages(spec)
    rows = st.stage_rows(run, stages, old.get("stages") or [])
    old_rows = {row.get("name"): row for row in old.get("stages") or []}
    throttle.interval = settings.progress_interval
    blocked = None
    phase = old.get("phase") or st.PENDING
    current = old.get("stage") or stages[0]
    message = ""

    def event(kind: str, reason: str, text: str) -> None:
        out.events.append(Event(kind, reason, text))

    if phase in (st.SUCCEEDED, st.FAILED):
        _cleanup_after_ttl(body, cluster, new, now, out)
        _finish(out, new, rows, phase, current, _ready_message(old), generation, now_iso, None, metrics, ns, run)
        out.requeue_after = _ttl_due(body, new, now)
        return out

    suspend = bool((spec.get("runPolicy") or {}).get("suspend"))
    # The operator changes a Job's suspend only when the run's changes: Kueue,
    # or an administrator, may suspend or admit the Job in between, and a pass
    # must not undo that. A status from before this field counts as unchanged.
    suspend_changed = suspend != bool(old.get("appliedSuspend", suspend))
    new["appliedSuspend"] = suspend
    phase, message = st.RUNNING, ""
    for stage in stages:
        row = rows[stage]
        current = stage
        if row.get("state") == st.SUCCEEDED:
            continue
        job_name = names.job(run, stage)
        job = cluster.get_job(ns, job_name)
        if job is None:
            if suspend:
                row["state"] = st.SUSPENDED
                phase, message = st.SUSPENDED, f"suspended before stage {stage} started"
                break
            try:
                # What every stage pod mounts, made (if absent) just before a
                # stage Job needs it: passes that only watch a Job make no calls.
                for child in _prerequisites(body, stage):
                    if cluster.ensure(child):
                        event("Normal", "Created", f"created {child['kind']} {child['metadata']['name']}")
                created = cluster.ensure(builders.job(body, stage))
            except ForeignObject as exc:
                # Same name, earlier run, not yet garbage-collected: its spec
                # ConfigMap would run this run's stages with the old recipe.
                blocked = _block(row, event, "WaitingForOldObject",
                                 f"{exc.kind} {exc.name} belongs to an earlier run named {run}; waiting for it to "
                                 f"be deleted (delete it by hand if it is not garbage-collected)")
                message = blocked["message"]
                break
            except ApiException as exc:
                blocked = _block(row, event, "CreateJobFailed",
                                 f"cannot create the {stage} stage's objects (Job {job_name}): {_api_reason(exc)}")
                # The error counter counts every try; the Event is posted once.
                metrics.reconcile_errors.labels("CreateJobFailed").inc()
                phase, message = (st.RUNNING if any(r.get("state") == st.SUCCEEDED for r in rows.values())
                                  else st.PENDING), blocked["message"]
                break
            if created and row.get("startTime"):
                # The stage had started: someone deleted its Job (or the
                # operator did, its result being lost). It runs again.
                event("Warning", "StageRestarted", f"stage {stage}: Job {job_name} was gone; created it again")
            elif created or not row.get("startTime"):
                # Also when the Job exists but no status recorded its start:
                # the operator stopped between creating it and writing status.
                event("Normal", "StageStarted", f"stage {stage}: created Job {job_name}")
            row.update(state="Running", jobName=job_name, attempts=max(1, int(row.get("attempts") or 0)),
                       startTime=row.get("startTime") or now_iso)
            row.pop("message", None)
            new.setdefault("startTime", now_iso)
            message = f"stage {stage} started"
            break

        owners = [o.get("uid") for o in (job.get("metadata") or {}).get("ownerReferences") or []]
        if meta.get("uid") not in owners:
            # Same name, earlier run (deleted and re-created before garbage
            # collection finished): never take its results; wait for it to go.
            blocked = _block(row, event, "WaitingForOldJob",
                             f"Job {job_name} belongs to an earlier run named {run}; waiting for it to be deleted "
                             f"(delete it by hand if it is not garbage-collected)")
            message = blocked["message"]
            break
        job_finished = observe.outcome(job, [])["state"] in (observe.SUCCEEDED, observe.FAILED)
        if not job_finished and suspend_changed and bool((job.get("spec") or {}).get("suspend")) != suspend:
            cluster.set_job_suspend(ns, job_name, suspend)
            job.setdefault("spec", {})["suspend"] = suspend
            event("Normal", "Suspended" if suspend else "Resumed",
                  f"stage {stage}: Job {job_name} {'suspended: its pods are stopped' if suspend else 'resumed'}")
        pods = cluster.job_pods(ns, job_name)
        seen = observe.outcome(job, pods)
        row["jobName"] = job_name
        if not row.get("startTime"):
            # A Job no status knew of: the operator stopped right after creating it.
            event("Normal", "StageStarted", f"stage {stage}: created Job {job_name}")
        row["startTime"] = row.get("startTime") or norm_time(seen.get("startTime"), now_iso)
        new.setdefault("startTime", row["startTime"])

        if seen["state"] == observe.SUCCEEDED and observe.result_pod(pods) is None:
            # The Job completed but its pod, whose termination message is the
            # result, was deleted before this operator read it. Run it again.
            cluster.delete_job(ns, job_name, (job.get("metadata") or {}).get("uid"))
            row.update(state=st.RUNNING, message=f"the result of Job {job_name} was lost with its pod; "
                                                f"running the stage again")
            if row.get("message") != (old_rows.get(stage) or {}).get("message"):
                event("Warning", "ResultLost", f"stage {stage}: {row['message']}")
            message = row["message"]
            break
        if seen["state"] == observe.SUCCEEDED:
            try:
                result = results.parse(seen["message"], stage)
                if result.get("ok") is False:
                    raise results.ResultError(f"stage {stage} exited 0 but reported ok=false: {result.get('error')}")
            except results.ResultError as exc:
                _stage_failed(out, row, stage, seen, str(exc), "ResultUnreadable", now, metrics)
                phase, message = st.FAILED, row["message"]
                break
            summary, new["results"] = results.apply(stage, result, new.get("results") or {})
            new["display"] = results.display(new["results"])
            row.update(state=st.SUCCEEDED, summary=summary, attempts=seen["attempts"],
                       completionTime=norm_time(seen.get("completionTime"), now_iso))
            row.pop("message", None)
            if stage == "train":
                _train_done(new, result)
            elif stage in plan.PROGRESS_STAGES and (new.get("progress") or {}).get("stage") == stage:
                # The last line read may predate the end: do not leave "50%" behind.
                prog = dict(new["progress"])
                prog.update(percent=100.0, summary=f"{stage} done")
                prog.pop("etaSeconds", None)
                new["progress"] = prog
            _observe_duration(metrics, stage, "Succeeded", row)
            event("Normal", "StageSucceeded", f"stage {stage}: {summary}")
            continue

        if seen["state"] == observe.FAILED:
            _stage_failed(out, row, stage, seen, seen["message"], seen.get("reason") or "Failed", now, metrics)
            phase, message = st.FAILED, row["message"]
            break

        # Running, retrying or suspended.
        before = int(row.get("attempts") or 1)
        if seen["attempts"] > before:
            metrics.stage_retries.labels(stage).inc(seen["attempts"] - before)
            event("Warning", "StageRetrying",
                  f"stage {stage}: attempt {before} failed ({seen['message'] or 'no message'}); "
                  f"attempt {seen['attempts']} of {1 + int((spec.get('runPolicy') or {}).get('backoffLimit', 2))}"
                  + ("; training resumes from its last complete checkpoint" if stage == "train" else ""))
        row.update(state=seen["state"], attempts=seen["attempts"])
        if seen["state"] == observe.RETRYING and seen["message"]:
            row["message"] = f"attempt {seen['attempts'] - 1} failed: {seen['message']}"
        if seen["state"] == observe.SUSPENDED:
            phase, message = st.SUSPENDED, f"stage {stage} suspended"
        else:
            message = f"stage {stage} {seen['state'].lower()} (attempt {seen['attempts']})"
            why = observe.unschedulable(pods)
            stuck = None if why else observe.blocked_container(pods)
            if why:
                # The question users ask most of NPU jobs: why is it Pending?
                blocked = {"reason": "Unschedulable", "message": why}
            elif stuck:
                # The pod is placed but its container cannot start: the kubelet's own words.
                blocked = stuck
            if blocked:
                if row.get("message") != blocked["message"]:
                    event("Warning", blocked["reason"], f"stage {stage}: {blocked['message']}")
                row["message"] = blocked["message"]
            elif row.get("message", "").startswith("pod ") and (
                    "cannot be scheduled" in row["message"] or " container " in row["message"]):
                row.pop("message")
            running = [p["metadata"]["name"] for p in pods if (p.get("status") or {}).get("phase") == "Running"]
            metrics.stage_pods(ns, run, stage, running)
            if stage in plan.PROGRESS_STAGES:
                _read_progress(cluster, ns, stage, pods, new, now, now_iso, settings, throttle)
        break
    else:
        phase, current = st.SUCCEEDED, "Done"
        message = (rows.get("report") or {}).get("summary") or "all stages succeeded"
        new["completionTime"] = now_iso
        new["progress"] = {**(new.get("progress") or {}), "summary": results.final_summary(new.get("results") or {})}
        new["progress"].pop("etaSeconds", None)
        event("Normal", "RunSucceeded", f"run succeeded: {message}")
        metrics.stage_pods(ns, run, "", [])

    if phase == st.FAILED:
        new["completionTime"] = now_iso
        metrics.stage_pods(ns, run, "", [])
    _finish(out, new, rows, phase, current, message, generation, now_iso, blocked, metrics, ns, run)
    out.requeue_after = _due_again(body, new, blocked, now, settings)
    return out


def _due_again(body: Obj, status: Obj, blocked: Optional[Obj], now: float, settings: Settings) -> Optional[float]:
    """When the run needs a pass that no watch event will cause."""
    phase = status.get("phase")
    if phase in (st.SUCCEEDED, st.FAILED):
        return _ttl_due(body, status, now)
    if blocked and blocked.get("reason") in ("CreateJobFailed", "WaitingForOldObject", "WaitingForOldJob"):
        # A quota raised, an old object deleted: nothing we watch says when.
        return settings.blocked_retry
    if phase == st.RUNNING and status.get("stage") in plan.PROGRESS_STAGES:
        return settings.progress_interval  # its log's progress lines
    return settings.resync_interval


def _ttl_due(body: Obj, status: Obj, now: float) -> Optional[float]:
    ttl = int(((body.get("spec") or {}).get("runPolicy") or {}).get("ttlSecondsAfterFinished") or 0)
    done = parse_time(status.get("completionTime"))
    if ttl <= 0 or done is None or status.get("jobsDeletedAt"):
        return None
    return max(0.0, done + ttl - now)


def _block(row: Obj, event: Callable[[str, str, str], None], reason: str, message: str) -> Obj:
    """A stage that cannot start: its row says why, and one Warning Event is
    posted while the reason lasts (the row keeps the message), not one a pass."""
    if row.get("message") != message:
        event("Warning", reason, message)
    row.update(state=st.PENDING, message=message)
    return {"reason": reason, "message": message}


def _prerequisites(body: Obj, stage: str) -> List[Obj]:
    spec = body.get("spec") or {}
    out = [builders.config_map(body)]
    claim = builders.persistent_volume_claim(body)
    if claim is not None:
        out.append(claim)
    if plan.is_multi_node(spec, stage):
        out.append(builders.headless_service(body))
    return out


def _ready_message(status: Obj) -> str:
    cond = st.get_condition(status.get("conditions") or [], "Ready") or {}
    return str(cond.get("message", ""))


def _stage_failed(out: Pass, row: Obj, stage: str, seen: Obj, pod_message: str, reason: str, now: float,
                  metrics: Metrics) -> None:
    attempts = seen.get("attempts") or 1
    why = {"BackoffLimitExceeded": "retries used up", "PodFailurePolicy": "permanent error (exit code 2)",
           "DeadlineExceeded": "activeDeadlineSeconds exceeded"}.get(reason, reason)
    message = f"stage {stage} failed after {attempts} attempt{'s' if attempts != 1 else ''} ({why}): " \
              f"{pod_message or 'the pod left no message'}"
    row.update(state=st.FAILED, message=message[:4000], attempts=attempts,
               completionTime=norm_time(seen.get("completionTime"), iso(now)))
    _observe_duration(metrics, stage, "Failed", row)
    out.events.append(Event("Warning", "StageFailed", message[:1000]))


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


def _read_progress(cluster: ClusterView, ns: str, stage: str, pods: List[Obj], status: Obj, now: float, now_iso: str,
                   settings: Settings, throttle: progress.Throttle) -> None:
    pod = observe.progress_pod(pods)
    if pod is None:
        return
    name = pod["metadata"]["name"]
    if not throttle.due(f"{ns}/{name}", now):
        return
    try:
        text = cluster.pod_log_tail(ns, name, settings.log_tail_lines)
    except ApiException as exc:
        # No log yet (container starting) or the node cannot serve it: try later.
        log.debug("no log for %s/%s: %s", ns, name, exc.reason)
        return
    line = progress.newest(text)
    if line is None:
        return
    fresh = progress.to_status(stage, line, now_iso)
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
    out.events.append(Event("Normal", "JobsDeleted",
                            f"deleted {count} Jobs {ttl}s after the run ended (ttlSecondsAfterFinished)"))


def _finish(out: Pass, new: Obj, rows: Obj, phase: str, current: str, message: str, generation: Optional[int],
            now_iso: str, blocked: Optional[Obj], metrics: Metrics, ns: str, run: str) -> None:
    new["stages"] = list(rows.values())
    new["phase"] = phase
    new["stage"] = current
    if generation is not None:
        new["observedGeneration"] = int(generation)
    new["conditions"] = st.conditions_for(new.get("conditions") or [], rows, phase, current, message or "",
                                          generation, now_iso, blocked)
    start = parse_time((rows.get(current) or {}).get("startTime"))
    metrics.observe_run(ns, run, phase, current, new, start)
