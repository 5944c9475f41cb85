"""Deciding the pass: the run's first unfinished stage observes its Job and
pods and hands them to its case (start it, it succeeded, it failed, it is
active); a stage that succeeded hands over to the next one, in the same pass."""
from typing import Tuple

from .. import names, observe, plan, schedulers
from ..vocabulary import EventReason, EventType, Phase, Reason, StageState
from .active import stage_active
from .device_fault import device_fault
from .outcome import run_succeeded, stage_failed, stage_succeeded
from .passes import Context, Step, blocked
from .publish import ready_message
from .retry import attempts_left, restart_whole, result_lost
from .start import apply_suspend, ensure_pod_group, start_stage
from .timing import norm_time


def next_step(p: Context) -> Tuple[str, Step]:
    """The stage the run is at and what its case decided; "Done" when the
    last stage succeeded."""
    p.new["appliedSuspend"] = p.suspend
    step = Step()
    for stage in p.stages:
        current = stage
        if p.rows[stage].get("state") == StageState.SUCCEEDED:
            continue
        step = stage_step(p, stage)
        if not step.next_stage:
            break
    else:
        current, step = "Done", run_succeeded(p)

    if step.phase == Phase.FAILED:
        p.new["completionTime"] = p.now_iso
        p.metrics.stage_pods(p.ns, p.run, "", [])
    return current, step


def stage_step(p: Context, stage: str) -> Step:
    """The case of one unfinished stage, from its Job and pods."""
    row, job_name = p.rows[stage], names.job(p.run, stage)
    job = p.cluster.find_job(p.ns, job_name)
    if job is None:
        return start_stage(p, stage, row, job_name)
    owners = [o.get("uid") for o in (job.get("metadata") or {}).get("ownerReferences") or []]
    if p.body["metadata"].get("uid") not in owners:
        # Same name, earlier run (deleted and re-created before garbage
        # collection finished): never take its results; wait for it to go.
        return blocked(p, row, Reason.WAITING_FOR_OLD_JOB,
                       f"Job {job_name} belongs to an earlier run named {p.run}; waiting for it to be deleted "
                       f"(delete it by hand if it is not garbage-collected)")
    if (job.get("metadata") or {}).get("deletionTimestamp"):
        # An attempt of multi-node training being stopped: the next starts
        # once its pods are gone (so no old rank answers to a rank's name).
        return Step(message=f"stage {stage}: stopping every rank of Job {job_name} before the next attempt")
    if schedulers.needs_pod_group(p.spec, stage) and row.get("podGroup") != job["metadata"].get("uid"):
        refused = ensure_pod_group(p, stage, row, job)
        if refused:
            return refused
    apply_suspend(p, stage, job, job_name)
    pods = p.cluster.job_pods(p.ns, job_name)
    seen = observe.outcome(job, pods)
    if plan.is_multi_node(p.spec, stage):
        # Each Job of multi-node training is one attempt of every rank.
        seen["attempts"] = observe.job_attempt(job)
    else:
        # A Job made after an NPU fault stopped the one before continues its count.
        seen["attempts"] += observe.job_attempt(job) - 1
    row["jobName"] = job_name
    if not row.get("startTime"):
        # A Job no status knew of: the operator stopped right after creating it.
        p.event(EventType.NORMAL, EventReason.STAGE_STARTED, f"stage {stage}: created Job {job_name}")
    row["startTime"] = row.get("startTime") or norm_time(seen.get("startTime"), p.now_iso)
    p.new.setdefault("startTime", row["startTime"])
    if seen["state"] == StageState.SUCCEEDED and observe.result_pod(pods) is None:
        if observe.result_lost(pods):
            return result_lost(p, stage, row, job, job_name)
        # Our view of its pod lags behind the Job controller's (separate
        # watch streams); the pod's Succeeded update wakes this run again,
        # in well under a second. The status says what it said: a patch
        # here would be one more write per stage for nothing a user sees.
        return Step(message=ready_message(p.body.get("status") or {}))
    if seen["state"] == StageState.SUCCEEDED:
        return stage_succeeded(p, stage, row, seen)
    if seen["state"] == StageState.FAILED:
        if row.get("state") == StageState.RETRYING and int(row.get("attempts") or 1) > seen["attempts"]:
            # This failed attempt is being stopped already; our view of its
            # Job has not caught up with the deletion yet.
            return Step(message=f"stage {stage}: stopping every rank of Job {job_name} before the next attempt")
        if attempts_left(p, stage, seen):
            return restart_whole(p, stage, row, job, seen)
        stage_failed(p, row, stage, seen, seen["message"], seen.get("reason") or "Failed")
        return Step(phase=Phase.FAILED, message=row["message"])
    return device_fault(p, stage, row, job, seen, pods) or stage_active(p, stage, row, job, seen, pods)
