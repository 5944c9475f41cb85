"""Run status per the Kubernetes API conventions. Pure.

Conditions: a summary (Ready; Succeeded and Failed as terminal outcomes;
Suspended) plus one per stage (plan.CONDITION_TYPE). lastTransitionTime only
moves when a condition's status changes; every condition carries the
generation it was computed for.
"""
import copy
import math
from typing import Dict, List, Optional, cast

from . import names, plan
from .types import Obj

PENDING, RUNNING, SUSPENDED, SUCCEEDED, FAILED = "Pending", "Running", "Suspended", "Succeeded", "Failed"


def set_condition(conditions: List[Obj], ctype: str, status: str, reason: str, message: str,
                  generation: Optional[int], now: str) -> List[Obj]:
    out = [copy.deepcopy(c) for c in conditions or []]
    new: Obj = {"type": ctype, "status": status, "reason": reason, "message": message[:30000],
           "lastTransitionTime": now}
    if generation is not None:
        new["observedGeneration"] = int(generation)
    for i, cond in enumerate(out):
        if cond.get("type") == ctype:
            if cond.get("status") == status and cond.get("lastTransitionTime"):
                new["lastTransitionTime"] = cond["lastTransitionTime"]
            out[i] = new
            return out
    out.append(new)
    return out


def get_condition(conditions: List[Obj], ctype: str) -> Optional[Obj]:
    for cond in conditions or []:
        if cond.get("type") == ctype:
            return cond
    return None


def stage_rows(run: str, stages: List[str], current: List[Obj]) -> Dict[str, Obj]:
    """One row per planned stage, keeping what earlier passes recorded."""
    known = {row.get("name"): copy.deepcopy(row) for row in current or []}
    rows = {}
    for stage in stages:
        row = known.get(stage) or {"name": stage, "state": PENDING, "attempts": 0}
        row.setdefault("jobName", names.job(run, stage))
        rows[stage] = row
    return rows


_STAGE_REASON = {PENDING: "Pending", "Running": "Running", "Retrying": "Retrying", SUSPENDED: "Suspended",
                 SUCCEEDED: "Succeeded", FAILED: "Failed"}


def conditions_for(previous: List[Obj], rows: Dict[str, Obj], phase: str, stage: str, message: str,
                   generation: Optional[int], now: str, blocked: Optional[Obj] = None) -> List[Obj]:
    """All conditions for this pass.

    blocked: {reason, message} when creating a child failed; it makes Ready
    False with that reason even though no stage could start.
    """
    conds = list(previous or [])
    for name, row in rows.items():
        state = row.get("state", PENDING)
        text = row.get("summary") if state == SUCCEEDED else row.get("message") or f"stage {name} is {state.lower()}"
        conds = set_condition(conds, plan.CONDITION_TYPE[name], "True" if state == SUCCEEDED else "False",
                              str(_STAGE_REASON.get(state, state)), text or "", generation, now)
    if phase == SUCCEEDED:
        ready = ("True", "RunSucceeded", message)
    elif phase == FAILED:
        ready = ("False", "StageFailed", message)
    elif blocked:
        ready = ("False", blocked["reason"], blocked["message"])
    elif phase == SUSPENDED:
        ready = ("False", "Suspended", message)
    else:
        ready = ("True", "StageRunning" if phase == RUNNING else "Pending", message)
    conds = set_condition(conds, "Ready", ready[0], ready[1], ready[2], generation, now)
    conds = set_condition(conds, "Succeeded", "True" if phase == SUCCEEDED else "False",
                          "RunSucceeded" if phase == SUCCEEDED else ("StageFailed" if phase == FAILED else "InProgress"),
                          message if phase in (SUCCEEDED, FAILED) else f"stage {stage} of {len(rows)}",
                          generation, now)
    conds = set_condition(conds, "Failed", "True" if phase == FAILED else "False",
                          "StageFailed" if phase == FAILED else "NoFailure",
                          message if phase == FAILED else "", generation, now)
    conds = set_condition(conds, "Suspended", "True" if phase == SUSPENDED else "False",
                          "Suspended" if phase == SUSPENDED else "NotSuspended",
                          message if phase == SUSPENDED else "", generation, now)
    return conds


def finite(value: object) -> object:
    """`value` with every non-finite float (NaN, +-Infinity) made None: JSON
    has no such numbers, and the API server refuses a patch that holds one
    (after which a run's status would never move again)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


def changed(old: Obj, new: Obj) -> Dict[str, object]:
    """The JSON merge patch (RFC 7386) that turns status `old` into `new`:
    what differs, objects recursed into, lists replaced whole, and a key that
    is gone set to null, which is how a merge patch deletes it (else
    etaSeconds of a finished stage would linger). Empty when nothing changed."""
    old, new = old or {}, cast(Obj, finite(new or {}))
    patch: Dict[str, object] = {}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            inner = changed(before, value)
            if inner:
                patch[key] = inner
        elif before != value or key not in old:
            patch[key] = value
    for key in old:
        if key not in new:
            patch[key] = None
    return patch
