"""A MathFinetune as the operator reads it: its identity, and its spec parsed
once by the API model (crds/mathtune_api) at the top of a pass. Everything
below the pass (plan, builders, pod templates, the reconcile steps) takes the
typed spec; the stored dict is kept only to hand to stage pods verbatim."""
from dataclasses import dataclass
from typing import Optional

from mathtune_api import MathFinetuneSpec, parse_spec

from .types import Obj


@dataclass(frozen=True)
class Run:
    name: str
    namespace: Optional[str]
    uid: Optional[str]
    generation: Optional[int]
    spec: MathFinetuneSpec
    # The spec exactly as the API server holds it: what stage pods read at
    # /etc/mathtune/spec.json (docs/contract.md §1), and parse themselves.
    stored_spec: Obj

    @classmethod
    def of(cls, body: Obj) -> "Run":
        """Raises mathtune_api.SpecInvalid (field, expected) for a spec the model refuses."""
        meta = body.get("metadata") or {}
        stored = body.get("spec") or {}
        return cls(name=str(meta["name"]), namespace=meta.get("namespace"), uid=meta.get("uid"),
                   generation=meta.get("generation"), spec=parse_spec(stored), stored_spec=stored)
