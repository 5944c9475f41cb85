"""Every default the spec declares, as one nested mapping: the Defaults
block of docs/contract.md. A spec gets its defaults by being parsed
(`parse_spec`); this only says them."""
from typing import Any, Dict

from .schema import model_schema
from .spec import MathFinetuneSpec


def _schema_defaults(node: Dict[str, Any]) -> Any:
    if node.get("type") == "object" and "properties" in node:
        out: Dict[str, Any] = {}
        for name, sub in node["properties"].items():
            value = _schema_defaults(sub)
            if value is not None:
                out[name] = value
        return out if out or "default" in node else None
    return node.get("default")


def spec_defaults() -> Dict[str, Any]:
    """The defaults of every field, required blocks included (their fields' defaults)."""
    out: Dict[str, Any] = _schema_defaults(model_schema(MathFinetuneSpec))
    return out
