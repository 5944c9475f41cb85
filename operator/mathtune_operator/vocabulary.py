"""The words a run's status and Events use, declared once. StrEnum members
are plain strings on the wire (status JSON, Event reasons) and compare equal
to them, so a status read back from the API server matches."""
from enum import StrEnum


class Phase(StrEnum):
    """status.phase."""
    PENDING = "Pending"
    RUNNING = "Running"
    SUSPENDED = "Suspended"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class StageState(StrEnum):
    """status.stages[].state, and what a stage's Job and pods say (observe)."""
    PENDING = "Pending"
    RUNNING = "Running"
    RETRYING = "Retrying"
    SUSPENDED = "Suspended"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class Reason(StrEnum):
    """Condition reasons, and the Event reasons of the same name."""
    PENDING = "Pending"
    STAGE_RUNNING = "StageRunning"
    RUN_SUCCEEDED = "RunSucceeded"
    STAGE_FAILED = "StageFailed"
    SUSPENDED = "Suspended"
    IN_PROGRESS = "InProgress"
    NO_FAILURE = "NoFailure"
    NOT_SUSPENDED = "NotSuspended"
    UNSCHEDULABLE = "Unschedulable"
    CREATE_JOB_FAILED = "CreateJobFailed"
    WAITING_FOR_OLD_JOB = "WaitingForOldJob"
    WAITING_FOR_OLD_OBJECT = "WaitingForOldObject"
    RESULT_UNREADABLE = "ResultUnreadable"
    QUEUED = "Queued"
    VOLUME_TOO_SMALL = "VolumeTooSmall"
    VOLUME_LARGE_ENOUGH = "VolumeLargeEnough"
    SPEC_UNREADABLE = "SpecUnreadable"


class EventReason(StrEnum):
    """Event reasons (besides the condition reasons a blocked stage posts,
    and the kubelet's own for a container that cannot start)."""
    CREATED = "Created"
    STAGE_STARTED = "StageStarted"
    STAGE_RESTARTED = "StageRestarted"
    STAGE_SUCCEEDED = "StageSucceeded"
    STAGE_FAILED = "StageFailed"
    STAGE_RETRYING = "StageRetrying"
    RESULT_LOST = "ResultLost"
    DEVICE_FAULT = "DeviceFault"
    LEAKAGE_FOUND = "LeakageFound"
    SUSPENDED = "Suspended"
    RESUMED = "Resumed"
    RUN_SUCCEEDED = "RunSucceeded"
    JOBS_DELETED = "JobsDeleted"


class EventType(StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"
