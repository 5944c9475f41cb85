"""The status a pass publishes: its stage rows, phase, current stage and
conditions, and the run's metrics to match. Pure but for the metrics."""
from typing import Optional

from .. import status as st
from ..types import Obj
from .passes import Context
from .timing import parse_time


def publish(p: Context, phase: str, current: str, message: str, blocked: Optional[Obj]) -> None:
    new, rows = p.new, p.rows
    generation = p.body["metadata"].get("generation")
    new["stages"] = list(rows.values())
    new["phase"] = phase
    new["stage"] = current
    if generation is not None:
        new["observedGeneration"] = int(generation)
    new["conditions"] = st.conditions_for(new.get("conditions") or [], rows, phase, current, message or "",
                                          generation, p.now_iso, blocked)
    start = parse_time((rows.get(current) or {}).get("startTime"))
    p.metrics.observe_run(p.ns, p.run, phase, current, new, start)


def ready_message(status: Obj) -> str:
    """What the Ready condition of a status says."""
    cond = st.get_condition(status.get("conditions") or [], "Ready") or {}
    return str(cond.get("message", ""))
