"""Run status per the Kubernetes API conventions. Pure.

Conditions: a summary (Ready; Succeeded and Failed as terminal outcomes;
Suspended) plus one per stage (plan.CONDITION_TYPE). lastTransitionTime only
moves when a condition's status changes; every condition carries the
generation it was computed for.
"""
import math
from typing import Dict, List, Optional, cast

from . import names, plan
from .vocabulary import Phase, Reason, StageState
from .types import Obj



def set_condition(conditions: List[Obj], ctype: str, status: str, reason: str, message: str,
                  generation: Optional[int], now: str) -> List[Obj]:
    out = [dict(c) for c in conditions or []]  # conditions hold no nested objects
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
    known = {row.get("name"): dict(row) for row in current or []}  # rows hold no nested objects
    rows = {}
    for stage in stages:
        row = known.get(stage) or {"name": stage, "state": StageState.PENDING, "attempts": 0}
        row.setdefault("jobName", names.job(run, stage))
        rows[stage] = row
    return rows


# A stage condition's reason is the stage's state.
_STAGE_REASON = {state.value: state.value for state in StageState}


def conditions_for(previous: List[Obj], rows: Dict[str, Obj], phase: str, stage: str, message: str,
                   generation: Optional[int], now: str, blocked: Optional[Obj] = None) -> List[Obj]:
    """All conditions for this pass.

    blocked: {reason, message} when creating a child failed; it makes Ready
    False with that reason even though no stage could start.
    """
    conds = list(previous or [])
    for name, row in rows.items():
        state = row.get("state", StageState.PENDING)
        text = row.get("summary") if state == StageState.SUCCEEDED else row.get("message") or f"stage {name} is {state.lower()}"
        conds = set_condition(conds, plan.CONDITION_TYPE[name], "True" if state == StageState.SUCCEEDED else "False",
                              str(_STAGE_REASON.get(state, state)), text or "", generation, now)
    if phase == Phase.SUCCEEDED:
        ready = ("True", Reason.RUN_SUCCEEDED, message)
    elif phase == Phase.FAILED:
        ready = ("False", Reason.STAGE_FAILED, message)
    elif blocked:
        ready = ("False", blocked["reason"], blocked["message"])
    elif phase == Phase.SUSPENDED:
        ready = ("False", Reason.SUSPENDED, message)
    else:
        ready = ("True", Reason.STAGE_RUNNING if phase == Phase.RUNNING else Reason.PENDING, message)
    conds = set_condition(conds, "Ready", ready[0], ready[1], ready[2], generation, now)
    done = phase in (Phase.SUCCEEDED, Phase.FAILED)
    conds = set_condition(conds, "Succeeded", "True" if phase == Phase.SUCCEEDED else "False",
                          Reason.RUN_SUCCEEDED if phase == Phase.SUCCEEDED
                          else (Reason.STAGE_FAILED if phase == Phase.FAILED else Reason.IN_PROGRESS),
                          message if done else f"stage {stage} of {len(rows)}", generation, now)
    conds = set_condition(conds, "Failed", "True" if phase == Phase.FAILED else "False",
                          Reason.STAGE_FAILED if phase == Phase.FAILED else Reason.NO_FAILURE,
                          message if phase == Phase.FAILED else "", generation, now)
    conds = set_condition(conds, "Suspended", "True" if phase == Phase.SUSPENDED else "False",
                          Reason.SUSPENDED if phase == Phase.SUSPENDED else Reason.NOT_SUSPENDED,
                          message if phase == Phase.SUSPENDED else "", generation, now)
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
