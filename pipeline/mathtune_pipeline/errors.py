"""Errors a stage reports to its caller.

`SpecError` is permanent (exit code 2: the operator does not retry it); every
other exception is treated as transient (exit code 1).
"""


class SpecError(ValueError):
    """Bad spec or bad input: names the field (or file) and what was expected."""

    def __init__(self, field: str, expected: str):
        super().__init__(f"{field}: {expected}")
        self.field = field
        self.expected = expected
