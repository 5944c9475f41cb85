"""A stage's outcome recorded: it succeeded (its result read from the pod's
termination message into status.results), it failed for good, or the last
stage succeeded and with it the run."""
from .. import plan, results
from .. import status as st
from ..metrics import Metrics
from ..types import Obj
from ..vocabulary import EventReason, EventType, Phase, Reason, StageState
from .fault_record import resumed
from .passes import Context, Step
from .progress_status import train_done
from .timing import norm_time, parse_time


def stage_succeeded(p: Context, stage: str, row: Obj, seen: Obj) -> Step:
    try:
        result = results.parse(seen["message"], stage)
        if result.get("ok") is False:
            raise results.ResultError(f"stage {stage} exited 0 but reported ok=false: {result.get('error')}")
    except results.ResultError as exc:
        stage_failed(p, row, stage, seen, str(exc), Reason.RESULT_UNREADABLE)
        return Step(phase=Phase.FAILED, message=row["message"])
    new = p.new
    summary, new["results"] = results.apply(stage, result, new.get("results") or {})
    new["display"] = results.display(new["results"])
    row.update(state=StageState.SUCCEEDED, summary=summary, attempts=seen["attempts"],
               completionTime=norm_time(seen.get("completionTime"), p.now_iso))
    row.pop("message", None)
    if stage == "prepare":
        check_volume(p)
        report_leakage(p)
    if stage == "train":
        train_done(new, result)
        resumed(row, result)
    elif stage in plan.PROGRESS_STAGES and (new.get("progress") or {}).get("stage") == stage:
        # The last line read may predate the end: do not leave "50%" behind.
        prog = dict(new["progress"])
        prog.update(percent=100.0, summary=f"{stage} done")
        prog.pop("etaSeconds", None)
        new["progress"] = prog
    observe_duration(p.metrics, stage, StageState.SUCCEEDED, row)
    p.event(EventType.NORMAL, EventReason.STAGE_SUCCEEDED, f"stage {stage}: {summary}")
    return Step(next_stage=True)


def check_volume(p: Context) -> None:
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


def report_leakage(p: Context) -> None:
    """One Warning Event when prepare found training rows among the scored ones: a user must
    not read a score without knowing (status.results.leakage has the counts)."""
    message = results.leakage_message((p.new.get("results") or {}).get("leakage") or {})
    if message:
        p.event(EventType.WARNING, EventReason.LEAKAGE_FOUND, message)


def stage_failed(p: Context, row: Obj, stage: str, seen: Obj, pod_message: str, reason: str) -> None:
    attempts = seen.get("attempts") or 1
    why = {"BackoffLimitExceeded": "retries used up", "PodFailurePolicy": "permanent error (exit code 2)",
           "DeadlineExceeded": "activeDeadlineSeconds exceeded", "DeviceFault": "an NPU failed"}.get(reason, reason)
    message = f"stage {stage} failed after {attempts} attempt{'s' if attempts != 1 else ''} ({why}): " \
              f"{pod_message or 'the pod left no message'}"
    row.update(state=StageState.FAILED, message=message[:4000], attempts=attempts,
               completionTime=norm_time(seen.get("completionTime"), p.now_iso))
    observe_duration(p.metrics, stage, StageState.FAILED, row)
    p.event(EventType.WARNING, EventReason.STAGE_FAILED, message[:1000])


def observe_duration(metrics: Metrics, stage: str, result: str, row: Obj) -> None:
    start, end = parse_time(row.get("startTime")), parse_time(row.get("completionTime"))
    if start is not None and end is not None and end >= start:
        metrics.stage_duration.labels(stage, result).observe(end - start)


def run_succeeded(p: Context) -> Step:
    new = p.new
    message = (p.rows.get("report") or {}).get("summary") or "all stages succeeded"
    new["completionTime"] = p.now_iso
    new["progress"] = {**(new.get("progress") or {}), "summary": results.final_summary(new.get("results") or {})}
    new["progress"].pop("etaSeconds", None)
    p.event(EventType.NORMAL, EventReason.RUN_SUCCEEDED, f"run succeeded: {message}")
    p.metrics.stage_pods(p.ns, p.run, "", [])
    return Step(next_stage=True, phase=Phase.SUCCEEDED, message=message)
