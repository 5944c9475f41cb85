"""What an NPU fault cost, once the attempt after it succeeded. Pure."""
from ..types import Obj


def resumed(row: Obj, result: Obj) -> None:
    """Fill the last fault's record from the result of the attempt right
    after it: which save it resumed from and how many steps were trained
    again (all of them when no save was complete: it started afresh)."""
    faults = row.get("deviceFaults") or []
    if not faults or faults[-1].get("attempt") != int(row.get("attempts") or 0) - 1:
        return  # no fault, or attempts failed for other reasons since
    last, origin = faults[-1], result.get("resumedFrom")
    start = 0
    if isinstance(origin, dict) and isinstance(origin.get("step"), int):
        start = origin["step"]
        last.update(resumedFromEpoch=origin.get("epoch"), resumedFromCheckpoint=origin.get("checkpoint"),
                    resumedFromStep=start)
    if isinstance(last.get("stepAtFault"), int):
        last["stepsRedone"] = max(0, last["stepAtFault"] - start)
