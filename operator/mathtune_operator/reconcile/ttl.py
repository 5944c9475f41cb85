"""spec.runPolicy.ttlSecondsAfterFinished: when an ended run's Jobs are
due to go, and the pass that deletes them."""
from typing import Optional

from ..resource import Run
from ..types import ClusterView, Obj
from ..vocabulary import EventReason, EventType
from ..types import Event
from .passes import Pass
from .timing import iso, parse_time


def ttl_due(run: Run, status: Obj, now: float) -> Optional[float]:
    ttl = run.spec.run_policy.ttl_seconds_after_finished
    done = parse_time(status.get("completionTime"))
    if ttl <= 0 or done is None or status.get("jobsDeletedAt"):
        return None
    return max(0.0, done + ttl - now)


def cleanup_after_ttl(run: Run, cluster: ClusterView, status: Obj, now: float, out: Pass) -> None:
    due = ttl_due(run, status, now)
    if due is None or due > 0 or run.namespace is None:
        return
    count = cluster.delete_jobs(run.namespace, run.name)
    status["jobsDeletedAt"] = iso(now)
    out.events.append(Event(EventType.NORMAL, EventReason.JOBS_DELETED,
                            f"deleted {count} Jobs {run.spec.run_policy.ttl_seconds_after_finished}s after the run "
                            f"ended (ttlSecondsAfterFinished)"))
