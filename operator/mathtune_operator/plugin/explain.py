"""Why a run is where it is, in plain words: from the diagnosis the operator
already wrote (conditions, stage rows) and what its pods and claim say. Pure."""
from typing import Any, Dict, List, Optional

Run = Dict[str, Any]
STUCK_WAITING = {"ErrImagePull": "its image cannot be pulled", "ImagePullBackOff": "its image cannot be pulled",
                 "CrashLoopBackOff": "its container keeps crashing",
                 "CreateContainerConfigError": "its container cannot be configured (a missing Secret or "
                                               "ConfigMap?)"}


def _condition(run: Run, kind: str) -> Optional[Dict[str, Any]]:
    return next((c for c in (run.get("status") or {}).get("conditions") or [] if c["type"] == kind), None)


def explain(run: Run, pods: List[Any], claim_phase: Optional[str]) -> List[str]:
    """Sentences, most important first. `pods` are the run's stage pods (kubernetes V1Pod)."""
    status = run.get("status") or {}
    phase, stage = status.get("phase") or "Pending", status.get("stage")
    name = run["metadata"]["name"]
    rows = {r["name"]: r for r in status.get("stages") or []}
    out: List[str] = []
    if phase == "Succeeded":
        gate = (status.get("results") or {}).get("gatePassed")
        out.append(f"{name} succeeded" + ("" if gate is None else
                                           ", and kept its original ability (gate passed)" if gate else
                                           ", but no epoch kept its original ability (gate failed): "
                                           "see kubectl mathtune results " + name))
        return out
    if phase == "Failed":
        row = rows.get(stage) or {}
        failed = _condition(run, "Failed") or {}
        out.append(f"{name} failed in stage {stage} after {row.get('attempts', '?')} attempt(s): "
                   f"{row.get('message') or failed.get('message') or 'no message'}")
        return out
    if phase == "Suspended":
        out.append(f"{name} is suspended (spec.runPolicy.suspend: true); set it to false to continue")
        return out
    ready = _condition(run, "Ready") or {}
    if ready.get("reason") and ready.get("reason") not in ("StageRunning", "RunSucceeded"):
        out.append(f"stage {stage} waits: {ready.get('reason')}: {ready.get('message', '')}")
    if claim_phase and claim_phase != "Bound":
        out.append(f"its work volume's claim is {claim_phase}: a claim that never binds has no StorageClass or PV "
                   f"to bind to (spec.storage)")
    for pod in pods:
        if (pod.metadata.labels or {}).get("mathtune.dev/stage") != stage or pod.status.phase not in ("Pending",):
            continue
        for container in pod.status.container_statuses or []:
            waiting = container.state.waiting if container.state else None
            if waiting and waiting.reason in STUCK_WAITING:
                out.append(f"pod {pod.metadata.name}: {STUCK_WAITING[waiting.reason]} ({waiting.reason}: "
                           f"{waiting.message or ''})")
        for condition in pod.status.conditions or []:
            if condition.type == "PodScheduled" and condition.status == "False":
                out.append(f"pod {pod.metadata.name} cannot be scheduled: {condition.message}")
    if not out:
        row = rows.get(stage) or {}
        progress = (status.get("progress") or {}).get("summary")
        out.append(f"{name} is {phase.lower()}: stage {stage} is {str(row.get('state', 'pending')).lower()}"
                   + (f" ({progress})" if progress else "") + "; nothing is holding it up")
    return out
