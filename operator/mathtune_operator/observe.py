"""What a stage's Job and pods say about the stage. Pure: dicts in, dict out.

Jobs and pods are plain dicts in the API's camelCase shape (what
`ApiClient.sanitize_for_serialization` returns, or what a test writes).
"""
import json
from typing import List, Optional, cast

from . import names
from .types import Obj
from .vocabulary import StageState



def _condition(job: Obj, ctype: str) -> Optional[Obj]:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") == ctype and cond.get("status") == "True":
            return cast(Obj, cond)
    return None


def _terminated(pod: Obj) -> Optional[Obj]:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        if cs.get("name") == names.CONTAINER:
            return cast(Optional[Obj], (cs.get("state") or {}).get("terminated"))
    return None


def _index(pod: Obj) -> str:
    return str(((pod.get("metadata") or {}).get("annotations") or {}).get("batch.kubernetes.io/job-completion-index", "0"))


def _finished_at(pod: Obj) -> str:
    term = _terminated(pod) or {}
    return term.get("finishedAt") or (pod.get("metadata") or {}).get("creationTimestamp") or ""


def pod_error(message: str) -> str:
    """The reason a pod gives: the result's `error` when the message is the
    result JSON, else the message itself (a log tail), trimmed."""
    text = (message or "").strip()
    for candidate in [text] + list(reversed(text.splitlines())):
        candidate = candidate.strip()
        if candidate.startswith("{"):
            try:
                value = json.loads(candidate)
            except ValueError:
                continue
            if isinstance(value, dict) and value.get("error"):
                return str(value["error"])[:1000]
    return text[-1000:]


def result_pod(pods: List[Obj]) -> Optional[Obj]:
    """The pod whose termination message is the stage's result: the
    succeeded pod of rank 0 (multi-node training), newest first."""
    done = [p for p in pods if (p.get("status") or {}).get("phase") == "Succeeded"]
    done.sort(key=lambda p: (_index(p) != "0", _finished_at(p)), reverse=False)
    if not done:
        return None
    rank0 = [p for p in done if _index(p) == "0"]
    pool = rank0 or done
    return max(pool, key=_finished_at)


def result_lost(pods: List[Obj]) -> bool:
    """The pods of a Complete Job hold no result: none succeeded, and none is
    still Pending or Running. Such a pod would be our own view lagging behind
    the Job controller's (the pod and Job watches are separate streams):
    its Succeeded update is on its way."""
    phases = {(p.get("status") or {}).get("phase") for p in pods}
    return not phases & {"Succeeded", "Pending", "Running"}


def newest_failed_pod(pods: List[Obj]) -> Optional[Obj]:
    failed = [p for p in pods if (p.get("status") or {}).get("phase") == "Failed"]
    return max(failed, key=_finished_at) if failed else None


def progress_pod(pods: List[Obj]) -> Optional[Obj]:
    """The running pod whose log carries progress lines (rank 0 if indexed)."""
    running = [p for p in pods if (p.get("status") or {}).get("phase") == "Running"]
    rank0 = [p for p in running if _index(p) == "0"]
    pool = rank0 or running
    return max(pool, key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or "") if pool else None


def job_attempt(job: Obj) -> int:
    """Which attempt of multi-node training this Job is (1 for a Job from
    before attempts were numbered)."""
    value = ((job.get("metadata") or {}).get("annotations") or {}).get(names.ANNOTATION_ATTEMPT, "1")
    return int(value) if str(value).isdigit() and int(value) > 0 else 1


def outcome(job: Obj, pods: List[Obj]) -> Obj:
    """{state, attempts, message, reason, startTime, completionTime}.

    message: the result JSON (Succeeded), or the failing pod's own words
    (Failed, Retrying). attempts: pods started so far (1 + failures)."""
    status = job.get("status") or {}
    failed = int(status.get("failed") or 0)
    out = {"attempts": failed + 1, "startTime": status.get("startTime")
           or (job.get("metadata") or {}).get("creationTimestamp"), "message": "", "reason": ""}
    complete = _condition(job, "Complete")
    if complete:
        pod = result_pod(pods)
        term = _terminated(pod) if pod else None
        out.update(state=StageState.SUCCEEDED, message=(term or {}).get("message") or "",
                   completionTime=status.get("completionTime") or complete.get("lastTransitionTime"))
        return out
    failed_cond = _condition(job, "Failed")
    pod = newest_failed_pod(pods)
    pod_message = pod_error((_terminated(pod) or {}).get("message", "")) if pod else ""
    if failed_cond:
        out.update(state=StageState.FAILED, attempts=max(1, failed), reason=failed_cond.get("reason") or "Failed",
                   message=pod_message or failed_cond.get("message") or "",
                   completionTime=failed_cond.get("lastTransitionTime"))
        return out
    if (job.get("spec") or {}).get("suspend"):
        out.update(state=StageState.SUSPENDED)
        return out
    out.update(state=StageState.RETRYING if failed else StageState.RUNNING, message=pod_message)
    return out


def unschedulable(pods: List[Obj]) -> Optional[str]:
    """Why a stage pod is not placed, in the scheduler's words (e.g. '0/4
    nodes are available: 2 Insufficient huawei.com/Ascend910, ...'), or None."""
    for pod in pods:
        status = pod.get("status") or {}
        if status.get("phase") != "Pending":
            continue
        for cond in status.get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
                return f"pod {(pod.get('metadata') or {}).get('name')} cannot be scheduled: " \
                       f"{cond.get('message') or cond.get('reason') or 'Unschedulable'}"
    return None


# Waiting reasons of a container that will not start without someone's help:
# the image cannot be had, its config (a Secret, a ConfigMap key) is missing,
# or it keeps crashing. ContainerCreating and PodInitializing are progress.
BLOCKING_WAIT_REASONS = frozenset({
    "ImagePullBackOff", "ErrImagePull", "ErrImageNeverPull", "InvalidImageName", "RegistryUnavailable",
    "CreateContainerConfigError", "CreateContainerError", "RunContainerError", "CrashLoopBackOff",
})


def blocked_container(pods: List[Obj]) -> Optional[Obj]:
    """{"reason", "message"} of the first stage container the kubelet cannot
    start (its own reason and message, e.g. ErrImagePull: pull access denied
    for ...), or None: such a pod is Pending or Running in phase, yet the
    stage makes no progress and will not without a fix."""
    for pod in pods:
        status = pod.get("status") or {}
        if status.get("phase") not in ("Pending", "Running"):
            continue
        for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
            waiting = (cs.get("state") or {}).get("waiting") or {}
            reason = waiting.get("reason")
            if reason in BLOCKING_WAIT_REASONS:
                detail = waiting.get("message") or reason
                return {"reason": reason, "message": f"pod {(pod.get('metadata') or {}).get('name')} container "
                                                     f"{cs.get('name')}: {reason}: {detail}"}
    return None


def admission_wait(workload: Obj) -> Optional[str]:
    """Why Kueue has not admitted a Workload, in its own words: the message
    of its first False condition among QuotaReserved and Admitted (e.g.
    "couldn't assign flavors to pod set main: insufficient unused quota for
    huawei.com/Ascend910 in flavor ..., 16 more needed"), or None."""
    conditions = {c.get("type"): c for c in (workload.get("status") or {}).get("conditions") or []}
    for ctype in ("QuotaReserved", "Admitted"):
        cond = conditions.get(ctype)
        if cond and cond.get("status") == "False" and cond.get("message"):
            return str(cond["message"])
    return None
