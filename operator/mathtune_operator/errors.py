"""Conditions the reconcile loop handles by name. Pure: no I/O."""


class ForeignObject(Exception):
    """A child's deterministic name is taken by an object another owner has:
    an earlier run of the same name, not yet garbage-collected. Using it would
    run this run's stages with the earlier run's spec."""

    def __init__(self, kind: str, name: str):
        super().__init__(f"{kind} {name} belongs to an earlier run of the same name")
        self.kind, self.name = kind, name
