"""Which MathFinetune fields a sweep may search, read from the spec's own
schema, and how a value is written at one of them. One pattern serves the
API server (a CEL rule on spec.parameters[].path) and the model's validator,
so the two never disagree on what a path is."""
import copy
import re
from functools import lru_cache
from typing import Any, Dict, List

from .schema import model_schema
from .spec import MathFinetuneSpec

# The recipe: what the seeds' teams varied. Storage, images, scheduling and
# the scoring sets are the sweep's frame, not its search.
TUNABLE_BLOCKS = ("data", "lora", "training")
_SEGMENT = re.compile(r"([A-Za-z][A-Za-z0-9]*)(?:\[([0-9]+)\])?")


def _leaves(node: Dict[str, Any], prefix: str, out: List[str]) -> None:
    kind = node.get("type")
    if kind == "object" and "properties" in node:
        for name, child in node["properties"].items():
            _leaves(child, f"{prefix}\\.{name}" if prefix else name, out)
    elif kind == "object" and isinstance(node.get("additionalProperties"), dict):
        out.append(f"{prefix}\\.[A-Za-z0-9_-]+")  # a map's key, e.g. data.sample.quotas.mass
    elif kind == "array" and (node.get("items") or {}).get("type") == "object":
        _leaves(node["items"], f"{prefix}\\[[0-9]+\\]", out)
    else:
        out.append(prefix)  # a scalar, or a list of scalars searched as one value (lora.targetModules)


@lru_cache(maxsize=1)
def path_pattern() -> str:
    """An RE2/Python regex matching exactly the searchable paths."""
    spec = model_schema(MathFinetuneSpec)
    out: List[str] = []
    for block in TUNABLE_BLOCKS:
        _leaves(spec["properties"][block], block, out)
    return "^(" + "|".join(out) + ")$"


def is_tunable(path: str) -> bool:
    return re.fullmatch(path_pattern(), path) is not None


class PathMissing(ValueError):
    """The path names a list item or a block the template does not have."""


def with_value(spec: Dict[str, Any], path: str, value: Any) -> Dict[str, Any]:
    """A copy of a spec (as the API server holds it) with `value` at `path`.
    Blocks the template left out are made; a list index must exist."""
    out = copy.deepcopy(spec)
    node: Any = out
    parts = path.split(".")
    for i, part in enumerate(parts):
        match = _SEGMENT.fullmatch(part)
        last = i == len(parts) - 1
        if match is None or not isinstance(node, dict):
            # A map key (data.sample.quotas.<type>) is any label: set as it is.
            if isinstance(node, dict) and last:
                node[part] = value
                return out
            raise PathMissing(f"{path}: {part!r} is not a field here")
        name, index = match.group(1), match.group(2)
        if index is None:
            if last:
                node[name] = copy.deepcopy(value)
                return out
            node = node.setdefault(name, {})
            continue
        items = node.get(name) or []
        if int(index) >= len(items):
            raise PathMissing(f"{path}: the template's {'.'.join(parts[:i] + [name])} has {len(items)} "
                              f"item{'s' if len(items) != 1 else ''}, so index {index} does not exist")
        if last:
            items[int(index)] = copy.deepcopy(value)
            return out
        node = items[int(index)]
    return out
