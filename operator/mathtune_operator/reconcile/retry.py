"""Running a stage's attempt again: multi-node training restarted whole
when a rank failed, and a stage whose result was lost with its pod."""
from .. import plan
from ..types import Obj
from ..vocabulary import EventReason, EventType, StageState
from .passes import Context, Step

# Why a Job of multi-node training failed when a rank did (builders._retry_policy);
# any other reason (exit code 2, the deadline) is final.
RANK_FAILED = frozenset({"MaxFailedIndexesExceeded", "FailedIndexes", "BackoffLimitExceeded"})


def attempt_limit(p: Context) -> int:
    """Attempts a stage gets: the first and runPolicy.backoffLimit more."""
    return 1 + p.spec.run_policy.backoff_limit


def attempts_left(p: Context, stage: str, seen: Obj) -> bool:
    return plan.is_multi_node(p.spec, stage) and seen.get("reason") in RANK_FAILED \
        and seen["attempts"] < attempt_limit(p)


def restart_whole(p: Context, stage: str, row: Obj, job: Obj, seen: Obj) -> Step:
    """A rank of multi-node training failed and the Job with it: stop every
    rank (the Job is deleted, in the foreground) and let the next pass start
    the next attempt, which resumes from the last checkpoint every rank
    completed (--resume auto)."""
    failed, nxt, limit = seen["attempts"], seen["attempts"] + 1, attempt_limit(p)
    p.cluster.delete_job(p.ns, job["metadata"]["name"], (job.get("metadata") or {}).get("uid"), foreground=True)
    p.metrics.stage_retries.labels(stage).inc()
    message = f"attempt {failed} failed: {seen['message'] or 'a rank failed'}"
    row.update(state=StageState.RETRYING, attempts=nxt, message=message[:4000])
    p.event(EventType.WARNING, EventReason.STAGE_RETRYING,
            f"stage {stage}: {message[:800]}; every rank is stopped and attempt {nxt} of {limit} resumes from "
            f"the last checkpoint every rank completed")
    return Step(message=f"stage {stage} retrying (attempt {nxt} of {limit})")


def result_lost(p: Context, stage: str, row: Obj, job: Obj, job_name: str) -> Step:
    """The Job completed but its pod, whose termination message is the
    result, was deleted before a pass read it: run the stage again."""
    p.cluster.delete_job(p.ns, job_name, (job.get("metadata") or {}).get("uid"))
    row.update(state=StageState.RUNNING,
               message=f"the result of Job {job_name} was lost with its pod; running the stage again")
    if row["message"] != (p.old_rows.get(stage) or {}).get("message"):
        p.event(EventType.WARNING, EventReason.RESULT_LOST, f"stage {stage}: {row['message']}")
    return Step(message=row["message"])
