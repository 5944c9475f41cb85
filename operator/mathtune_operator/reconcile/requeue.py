"""When a run wants its next pass with no watch event to cause it. Pure."""
from typing import Optional

from .. import plan
from ..resource import Run
from ..types import Obj
from ..vocabulary import Phase, Reason
from .passes import Settings
from .ttl import ttl_due


def due_again(run: Run, status: Obj, blocked: Optional[Obj], now: float, settings: Settings) -> Optional[float]:
    """When the run needs a pass that no watch event will cause."""
    phase = status.get("phase")
    if phase in (Phase.SUCCEEDED, Phase.FAILED):
        return ttl_due(run, status, now)
    if blocked and blocked.get("reason") in (Reason.CREATE_JOB_FAILED, Reason.WAITING_FOR_OLD_OBJECT,
                                             Reason.WAITING_FOR_OLD_JOB):
        # A quota raised, an old object deleted: nothing we watch says when.
        return settings.blocked_retry
    if phase == Phase.RUNNING and status.get("stage") in plan.PROGRESS_STAGES:
        return settings.progress_interval  # its log's progress lines
    return settings.resync_interval
