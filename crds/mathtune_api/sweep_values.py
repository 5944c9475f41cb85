"""A sweep parameter's values read as the field's type, and a trial's spec:
the template with each parameter's value written at its path. Checked against
the MathFinetune model before any trial exists, so a value the field cannot
take names its parameter instead of failing a trial."""
import json
from functools import lru_cache
from typing import Any, Dict, List, Mapping, Union

import yaml

from .parse import SpecInvalid, parse_spec
from .schema import model_schema
from .spec import MathFinetuneSpec
from .sweep_paths import PathMissing, with_value

Raw = Union[int, float, str]


@lru_cache(maxsize=1)
def _spec_schema() -> Dict[str, Any]:
    return model_schema(MathFinetuneSpec)


def field_schema(path: str) -> Dict[str, Any]:
    """The schema of the field a (tunable) path names."""
    node = _spec_schema()
    for part in path.split("."):
        name, _, _ = part.partition("[")
        if "properties" in node and name in node["properties"]:
            node = node["properties"][name]
            if "[" in part:
                node = node["items"]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            raise PathMissing(f"{path}: {part!r} is not a field here")
    return node


def decode(path: str, raw: Raw) -> Any:
    """A value as the field at `path` takes it: categorical values are
    written as integers or text ("1e-4", "true", "[wq, wv]")."""
    node = field_schema(path)
    kind = node.get("type")
    if not isinstance(raw, str):
        return float(raw) if kind == "number" else raw
    text = raw.strip()
    if node.get("x-kubernetes-int-or-string"):
        return int(text) if text.lstrip("-").isdigit() else text
    if kind == "number":
        return float(text)
    if kind == "integer":
        return int(text)
    if kind == "boolean":
        if text.lower() not in ("true", "false"):
            raise ValueError(f"{raw!r} is not true or false")
        return text.lower() == "true"
    if kind in ("array", "object"):
        return yaml.safe_load(text)
    return raw


def trial_spec(template: Mapping[str, Any], values: Mapping[str, Any]) -> Dict[str, Any]:
    """The template (as the API server holds it) with each decoded value at its path."""
    out = dict(template)
    for path, value in values.items():
        out = with_value(out, path, value)
    return out


def candidates(parameter: Any) -> List[Raw]:
    """The values of a parameter that bound what a trial may get: its ends, or every categorical value."""
    if parameter.type == "categorical":
        return list(parameter.values or [])
    low, high = parameter.low, parameter.high
    return [int(low), int(high)] if parameter.type == "int" else [low, high]


def check_values(template: Any, parameters: List[Any]) -> None:
    """Every candidate value of every parameter, written into the template,
    gives a spec the MathFinetune model takes; else SpecInvalid naming
    spec.parameters[i]."""
    wire = template.wire()
    for i, parameter in enumerate(parameters):
        where = f"spec.parameters[{i}]"
        for raw in candidates(parameter):
            try:
                parse_spec(with_value(wire, parameter.path, decode(parameter.path, raw)))
            except SpecInvalid as exc:
                raise SpecInvalid(where, f"{parameter.path} = {json.dumps(raw)}: the template would then break "
                                         f"a rule of its own: {exc}") from None
            except (PathMissing, ValueError, yaml.YAMLError) as exc:
                raise SpecInvalid(where, f"{parameter.path} = {json.dumps(raw)}: {exc}") from None
