"""A stage whose attempt lives: running, retrying, suspended, or queued in
Kueue. Its row records attempts and why it is stuck, if it is."""
from typing import List

from kubernetes.client.exceptions import ApiException

from .. import observe, plan, schedulers
from ..types import Obj
from ..vocabulary import EventReason, EventType, Phase, Reason, StageState
from .passes import Context, Step, api_reason, attempt_message
from .progress_status import read_progress
from .retry import attempt_limit


def stage_active(p: Context, stage: str, row: Obj, job: Obj, seen: Obj, pods: List[Obj]) -> Step:
    """Running, retrying or suspended: record attempts, why it is stuck if
    it is, and its progress lines."""
    before = int(row.get("attempts") or 1)
    if seen["attempts"] > before:
        p.metrics.stage_retries.labels(stage).inc(seen["attempts"] - before)
        limit = attempt_limit(p)
        p.event(EventType.WARNING, EventReason.STAGE_RETRYING,
                f"stage {stage}: attempt {before} failed ({seen['message'] or 'no message'}); "
                f"attempt {seen['attempts']} of {limit}"
                + ("; training resumes from its last complete checkpoint" if stage == "train" else ""))
    row.update(state=seen["state"], attempts=seen["attempts"])
    if seen["state"] == StageState.RETRYING and seen["message"]:
        row["message"] = f"attempt {seen['attempts'] - 1} failed: {seen['message']}"
    if seen["state"] == StageState.SUSPENDED and not p.suspend and schedulers.local_queue(p.spec):
        return queued(p, stage, row, job)
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
        read_progress(p, stage, pods)
    return Step(message=attempt_message(stage, seen["state"], seen["attempts"]), blocked=blocked)


QUEUED_IN_KUEUE = "is queued in Kueue LocalQueue"


def queued(p: Context, stage: str, row: Obj, job: Obj) -> Step:
    """A Job Kueue has not admitted: the run waits, and says for what, in
    Kueue's words (its Workload's QuotaReserved or Admitted condition)."""
    queue = schedulers.local_queue(p.spec)
    why = "Kueue has not made its Workload yet"
    try:
        workload = p.cluster.workload_of(p.ns, str(job["metadata"].get("uid")))
    except ApiException as exc:
        workload, why = None, f"its Workload cannot be read: {api_reason(exc)}"
    if workload is not None:
        why = observe.admission_wait(workload) or "waiting for admission"
    message = f"stage {stage}: Job {job['metadata']['name']} {QUEUED_IN_KUEUE} {queue}: {why}"
    if row.get("message") != message:
        p.event(EventType.NORMAL, Reason.QUEUED, message)
    row.update(state=StageState.PENDING, message=message)
    started = any(r.get("state") == StageState.SUCCEEDED for r in p.rows.values())
    return Step(phase=Phase.RUNNING if started else Phase.PENDING, message=message,
                blocked={"reason": Reason.QUEUED, "message": message})
