"""Reading a spec mapping into the typed model, with errors that name the field."""
from typing import Any, Mapping, Sequence, Union

from pydantic import ValidationError

from .spec import MathFinetuneSpec


class SpecInvalid(ValueError):
    """A spec the model refuses: `field` is its path (spec.training.epochs), `expected` what it must be."""

    def __init__(self, field: str, expected: str):
        super().__init__(f"{field}: {expected}")
        self.field, self.expected = field, expected


def _path(loc: Sequence[Union[int, str]]) -> str:
    out = "spec"
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def parse_spec(spec: Any) -> MathFinetuneSpec:
    """The spec as a model, its defaults applied: what the API server would hold."""
    if not isinstance(spec, Mapping):
        raise SpecInvalid("spec", "a mapping")
    try:
        return MathFinetuneSpec.model_validate(spec)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        path = _path([p for p in first["loc"] if not (isinstance(p, str) and p.startswith(("function-", "literal[")))])
        message = first["msg"].removeprefix("Value error, ")
        # A rule's message names its field already (the CEL rule's, word for word).
        raise SpecInvalid(path, message.removeprefix(path + " ").removeprefix(path + ": ")) from None
