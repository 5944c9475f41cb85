"""Errors a stage reports to its caller.

`SpecError` is permanent (exit code 2: the operator does not retry it); every
other exception is treated as transient (exit code 1).
"""
from typing import Optional


class SpecError(ValueError):
    """Bad spec or bad input: names the field (or file) and what was expected."""

    def __init__(self, field: str, expected: str):
        super().__init__(f"{field}: {expected}")
        self.field = field
        self.expected = expected

    def __reduce__(self):
        # Raised in worker processes too: pickle with both arguments, not the joined message.
        return (type(self), (self.field, self.expected))


class StageExit(RuntimeError):
    """A child process the stage ran (msrun) failed: the stage exits with its code.

    Kept as the child's so the operator's retry rule sees the real cause: 1 for
    a failed rank, >= 128 for a signal (OOM kill, preemption).
    """

    def __init__(self, what: str, code: int, cause: Optional[str] = None):
        # A negative returncode is Python's "killed by signal N": the shell's 128 + N.
        self.code = 128 - code if code < 0 else (code or 1)
        super().__init__(f"{what} exited with code {self.code}" + (f": {cause}" if cause else ""))
