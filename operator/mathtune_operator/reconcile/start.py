"""Starting a stage: what its pods mount, its Job, its PodGroup once the
Job exists, and carrying the run's suspend over to a Job (or its Kueue
Workload). Every call goes through the cluster the pass is handed."""
from typing import List, Optional

from kubernetes.client.exceptions import ApiException

from .. import builders, observe, plan, schedulers
from ..errors import ForeignObject
from ..resource import Run
from ..types import Obj
from ..vocabulary import EventReason, EventType, Phase, Reason, StageState
from .passes import Context, Step, api_reason, attempt_message, blocked


def start_stage(p: Context, stage: str, row: Obj, job_name: str) -> Step:
    if p.suspend:
        row["state"] = StageState.SUSPENDED
        return Step(phase=Phase.SUSPENDED, message=f"suspended before stage {stage} started")
    try:
        # What every stage pod mounts, made (if absent) just before a stage
        # Job needs it: passes that only watch a Job make no calls.
        started = any(r.get("startTime") for r in p.rows.values())
        for child in prerequisites(p.resource, stage, started):
            if p.cluster.ensure(child):
                p.event(EventType.NORMAL, EventReason.CREATED, f"created {child['kind']} {child['metadata']['name']}")
        created = p.cluster.ensure(builders.job(p.resource, stage, attempt=max(1, int(row.get("attempts") or 1))))
    except ForeignObject as exc:
        # Same name, earlier run, not yet garbage-collected: its spec
        # ConfigMap would run this run's stages with the old recipe.
        return blocked(p, row, Reason.WAITING_FOR_OLD_OBJECT,
                       f"{exc.kind} {exc.name} belongs to an earlier run named {p.run}; waiting for it to be "
                       f"deleted (delete it by hand if it is not garbage-collected)")
    except ApiException as exc:
        # The error counter counts every try; the Event is posted once.
        p.metrics.reconcile_errors.labels(Reason.CREATE_JOB_FAILED).inc()
        started = any(r.get("state") == StageState.SUCCEEDED for r in p.rows.values())
        return blocked(p, row, Reason.CREATE_JOB_FAILED,
                       f"cannot create the {stage} stage's objects (Job {job_name}): {api_reason(exc)}",
                       phase=Phase.RUNNING if started else Phase.PENDING)
    if created and row.get("state") == StageState.RETRYING:
        # The next attempt of multi-node training (retry.restart_whole said so).
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
    return Step(message=attempt_message(stage, row["state"], row["attempts"]))


def prerequisites(run: Run, stage: str, started: bool) -> List[Obj]:
    """What the stage's pods need besides their Job. The spec ConfigMap and
    the claim are made before the run's first stage starts (`started`: one
    has) and never changed after, so later stages do not ask again: at
    hundreds of runs that was a refused create and a read per stage."""
    out = []
    if not started:
        out.append(builders.config_map(run))
        claim = builders.persistent_volume_claim(run)
        if claim is not None:
            out.append(claim)
    if plan.is_multi_node(run.spec, stage):
        out.append(builders.headless_service(run))
    return out


def ensure_pod_group(p: Context, stage: str, row: Obj, job: Obj) -> Optional[Step]:
    """The Job's PodGroup, made once the Job (its owner) exists: its pods
    wait for it, unscheduled, until it does. The row remembers for which
    Job it was made, so later passes make no call."""
    group = schedulers.pod_group(p.resource, stage, job)
    try:
        if p.cluster.ensure(group):
            p.event(EventType.NORMAL, EventReason.CREATED, f"created PodGroup {group['metadata']['name']} "
                                                           f"(minMember {group['spec']['minMember']})")
    except ForeignObject as exc:
        return blocked(p, row, Reason.WAITING_FOR_OLD_OBJECT,
                       f"{exc.kind} {exc.name} belongs to an earlier Job of the same name; waiting for it to be "
                       f"deleted")
    except ApiException as exc:
        p.metrics.reconcile_errors.labels(Reason.CREATE_JOB_FAILED).inc()
        return blocked(p, row, Reason.CREATE_JOB_FAILED,
                       f"cannot create PodGroup {group['metadata']['name']} (is Volcano installed?): "
                       f"{api_reason(exc)}")
    row["podGroup"] = job["metadata"].get("uid")
    return None


def apply_suspend(p: Context, stage: str, job: Obj, job_name: str) -> None:
    job_finished = observe.outcome(job, [])["state"] in (StageState.SUCCEEDED, StageState.FAILED)
    if job_finished or not p.suspend_changed:
        return
    if schedulers.local_queue(p.spec):
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
