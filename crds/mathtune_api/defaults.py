"""Every default the spec declares, as one nested mapping, and a partial spec
filled with them the way the API server fills a resource.

`parse_spec` is the way to read a whole spec. This is for what is not one: a
spec fragment a builder or a test starts from, and the defaults block of
docs/contract.md. Blocks the user gives are merged key by key; maps whose
keys are the user's (quotas, node selectors, base scores) are taken whole.
"""
import copy
from typing import Any, Dict, Tuple

from .schema import model_schema
from .spec import MathFinetuneSpec

_OPAQUE_MAPS = {("data", "sample", "quotas"), ("scheduling", "nodeSelector"), ("evaluation", "baseScores")}


def _schema_defaults(node):
    if node.get("type") == "object" and "properties" in node:
        out = {}
        for name, sub in node["properties"].items():
            value = _schema_defaults(sub)
            if value is not None:
                out[name] = value
        return out if out or "default" in node else None
    return node.get("default")


def spec_defaults() -> Dict[str, Any]:
    """The defaults of every field, required blocks included (their fields' defaults)."""
    return _schema_defaults(model_schema(MathFinetuneSpec))


def _optional_blocks():
    """Blocks the API server leaves out when the user does (no default of their own, e.g. export)."""
    defaults = spec_defaults()
    return {(info.alias or name,) for name, info in MathFinetuneSpec.model_fields.items()
            if info.default is None and isinstance(defaults.get(info.alias or name), dict)}


def _merge(defaults: Any, given: Any, path: Tuple[str, ...], optional) -> Any:
    if isinstance(defaults, dict) and isinstance(given, dict) and path not in _OPAQUE_MAPS:
        out = copy.deepcopy(defaults)
        for key, value in given.items():
            out[key] = _merge(defaults.get(key), value, path + (key,), optional) if key in defaults \
                else copy.deepcopy(value)
        for key in defaults:
            if key not in given and path + (key,) in optional:
                del out[key]
        return out
    if given is None:
        return copy.deepcopy(defaults)
    return copy.deepcopy(given)


_DEFAULTS = spec_defaults()
_OPTIONAL = _optional_blocks()


def with_defaults(spec: Dict[str, Any]) -> Dict[str, Any]:
    """A spec fragment with every default filled in, unchecked."""
    return _merge(_DEFAULTS, spec, (), _OPTIONAL)
