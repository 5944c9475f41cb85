"""Reading a spec mapping into the typed model, with errors that name the field."""
from typing import TYPE_CHECKING, Any, Mapping, Sequence, Union

from pydantic import ValidationError

from .spec import MathFinetuneSpec

if TYPE_CHECKING:
    from .sweep import MathFinetuneSweepSpec


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
        raise _invalid(exc) from None


def _invalid(exc: ValidationError) -> SpecInvalid:
    first = exc.errors(include_url=False)[0]
    path = _path([p for p in first["loc"] if not (isinstance(p, str) and p.startswith(("function-", "literal[")))])
    message = first["msg"].removeprefix("Value error, ")
    named, colon, rest = message.partition(": ")
    if path == "spec" and colon and named.startswith("spec.") and " " not in named:
        # A rule over the whole spec names the field it is about: report it there.
        return SpecInvalid(named, rest)
    # A rule's message names its field already (the CEL rule's, word for word).
    return SpecInvalid(path, message.removeprefix(path + " ").removeprefix(path + ": "))


def parse_sweep(spec: Any) -> "MathFinetuneSweepSpec":
    """A sweep's spec as a model, its defaults applied, and every parameter's
    values checked against its template (what no CEL rule can check)."""
    from .sweep import MathFinetuneSweepSpec
    from .sweep_values import check_values

    if not isinstance(spec, Mapping):
        raise SpecInvalid("spec", "a mapping")
    try:
        sweep = MathFinetuneSweepSpec.model_validate(spec)
    except ValidationError as exc:
        raise _invalid(exc) from None
    check_values(sweep.template, sweep.parameters)
    return sweep
