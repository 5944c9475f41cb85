"""A stored run whose spec the API model refuses (a resource written before
a CRD change, or past a webhook-less API server): the pass acts on nothing,
deletes nothing, and says on the Ready condition (an ended run: in a Warning
Event, its outcome kept) which field is wrong and what it must be. An edit
of the spec brings the next pass."""
import copy

from mathtune_api import SpecInvalid

from .. import status as st
from ..types import Obj
from ..vocabulary import EventType, Phase, Reason
from ..types import Event
from .passes import Pass
from .timing import iso


def spec_refused(body: Obj, exc: SpecInvalid, now: float) -> Pass:
    old = body.get("status") or {}
    new = copy.deepcopy(old)
    generation = (body.get("metadata") or {}).get("generation")
    message = (f"the operator cannot read this run's spec: {exc.field}: {exc.expected}; nothing is started or "
               f"deleted until the spec is fixed")
    previous = st.get_condition(old.get("conditions") or [], "Ready") or {}
    if old.get("phase") in (Phase.SUCCEEDED, Phase.FAILED):
        # An ended run keeps its outcome; only its TTL cleanup waits.
        return Pass(status=new, events=[Event(EventType.WARNING, Reason.SPEC_UNREADABLE, message)])
    new["phase"] = old.get("phase") or Phase.PENDING
    if generation is not None:
        new["observedGeneration"] = int(generation)
    new["conditions"] = st.set_condition(new.get("conditions") or [], "Ready", "False", Reason.SPEC_UNREADABLE,
                                         message, generation, iso(now))
    out = Pass(status=new)
    if previous.get("message") != message:
        out.events.append(Event(EventType.WARNING, Reason.SPEC_UNREADABLE, message))
    return out
