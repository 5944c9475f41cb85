"""A training attempt whose NPU went out of service: stop it and resume on
healthy devices.

A device that fails mid-step leaves the collective communication of every
rank hanging until HCCL's timeout (minutes), or the process dies with a
driver error that says nothing of which chip. The node's device plugin says
it at once, in MindCluster's device-info ConfigMap (device_health.py): the
operator stops the attempt (the whole Job, every rank), records which device
of which pod failed and how far training had got, and the next attempt
resumes from the last checkpoint every rank completed. The kubelet gives it
healthy devices only: the plugin reported the bad one Unhealthy through
ListAndWatch, so it is no longer allocatable. A fault counts against
runPolicy.backoffLimit like any failed attempt."""
from typing import List, Optional

from .. import device_health
from ..types import Obj
from ..vocabulary import EventReason, EventType, Phase, StageState
from .outcome import stage_failed
from .passes import Context, Step
from .retry import attempt_limit

KEPT = 10  # status keeps the newest faults of a stage


def trained_steps(progress: Optional[Obj]) -> Optional[int]:
    """Steps done over all epochs, from training's last progress line (epoch
    and step count from 1, as MindFormers prints them)."""
    prog = progress or {}
    epoch, step, steps = prog.get("epoch"), prog.get("step"), prog.get("steps")
    if prog.get("stage") != "train" or not (isinstance(epoch, int) and isinstance(step, int)
                                            and isinstance(steps, int) and min(epoch, step, steps) > 0):
        return None
    return (epoch - 1) * steps + step


def device_fault(p: Context, stage: str, row: Obj, job: Obj, seen: Obj, pods: List[Obj]) -> Optional[Step]:
    """Stop the attempt when a device one of its pods holds is out of service
    (None: no fault, the attempt goes on)."""
    if stage != "train":
        return None
    found = device_health.faults(pods, p.cluster.device_info)
    if not found:
        return None
    first = found[0]
    attempt, limit = int(seen["attempts"]), attempt_limit(p)
    fault: Obj = {"node": first["node"], "pod": first["pod"], "devices": first["devices"], "attempt": attempt,
                  "detectedAt": p.now_iso}
    done = trained_steps(p.new.get("progress"))
    if done is not None:
        fault["stepAtFault"] = done
    row["deviceFaults"] = ((row.get("deviceFaults") or []) + [fault])[-KEPT:]
    what = ", ".join(f"{d['name']} ({d['why']})" for d in first["devices"])
    where = f"NPU {what} of pod {first['pod']} on node {first['node']}"
    p.cluster.delete_job(p.ns, job["metadata"]["name"], (job.get("metadata") or {}).get("uid"), foreground=True)
    p.metrics.device_faults.labels(first["node"]).inc()
    if attempt >= limit:
        stage_failed(p, row, stage, {**seen, "completionTime": p.now_iso},
                     f"{where} went out of service and runPolicy.backoffLimit allows no more attempts",
                     EventReason.DEVICE_FAULT)
        return Step(phase=Phase.FAILED, message=row["message"])
    nxt = attempt + 1
    message = (f"attempt {attempt} stopped: {where} went out of service "
               f"({device_health.DEVICE_INFO_PREFIX}{first['node']}); attempt {nxt} of {limit} resumes from the "
               f"last checkpoint every rank completed, on healthy devices")
    row.update(state=StageState.RETRYING, attempts=nxt, message=message)
    p.event(EventType.WARNING, EventReason.DEVICE_FAULT, f"stage {stage}: {message}")
    return Step(message=f"stage {stage} retrying (attempt {nxt} of {limit}) after an NPU fault")
