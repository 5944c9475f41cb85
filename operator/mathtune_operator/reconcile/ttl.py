"""spec.runPolicy.ttlSecondsAfterFinished: when an ended run's Jobs are
due to go, and the pass that deletes them."""
from typing import Optional

from ..types import ClusterView, Obj
from ..vocabulary import EventReason, EventType
from .passes import Event, Pass
from .timing import iso, parse_time


def ttl_due(body: Obj, status: Obj, now: float) -> Optional[float]:
    ttl = int(((body.get("spec") or {}).get("runPolicy") or {}).get("ttlSecondsAfterFinished") or 0)
    done = parse_time(status.get("completionTime"))
    if ttl <= 0 or done is None or status.get("jobsDeletedAt"):
        return None
    return max(0.0, done + ttl - now)


def cleanup_after_ttl(body: Obj, cluster: ClusterView, status: Obj, now: float, out: Pass) -> None:
    due = ttl_due(body, status, now)
    if due is None or due > 0:
        return
    ttl = int(body["spec"]["runPolicy"]["ttlSecondsAfterFinished"])
    meta = body["metadata"]
    count = cluster.delete_jobs(meta["namespace"], meta["name"])
    status["jobsDeletedAt"] = iso(now)
    out.events.append(Event(EventType.NORMAL, EventReason.JOBS_DELETED,
                            f"deleted {count} Jobs {ttl}s after the run ended (ttlSecondsAfterFinished)"))
