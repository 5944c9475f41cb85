"""The typed models, read as the OpenAPI v3 schema the API server checks.

Pydantic can write JSON Schema, but a CRD wants the structural OpenAPI
dialect (no $ref, no anyOf for optional fields, boolean exclusive bounds,
x-kubernetes-* extensions, object defaults as `{}` expanded in full), so the
schema is read from the models' fields directly:

- a field's description, default, bounds, pattern and length come from its
  `Field(...)`; enums from `Literal[...]`;
- a model's CEL rules are its `RULES` class attribute;
- `Raw(schema)` in a field's annotation gives its schema verbatim (Kubernetes'
  own types, int-or-string fields);
- `json_schema_extra` on a field adds keys (list types, rules on a list).
"""
import copy
import json
import types
import typing
from typing import Any, Dict, List, Literal, Optional, Type, Union

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from .vocabulary import SHORT


class Raw:
    """A field's schema, given verbatim (see the module's docstring)."""

    def __init__(self, schema: Dict[str, Any]):
        self.schema = schema


class Format:
    """A string's OpenAPI format (date-time), with no length bound."""

    def __init__(self, name: str):
        self.name = name


# `X | None` (3.10+) and Optional[X]; the package supports 3.9, which has no UnionType.
_UNIONS = (Union, getattr(types, "UnionType", Union))


def _unwrap_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in _UNIONS:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _default(info: FieldInfo) -> Any:
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
        return {} if isinstance(value, BaseModel) else value
    if info.default is PydanticUndefined or info.default is None:
        return None
    return info.default


def _bounds(out: Dict[str, Any], metadata: List[Any]) -> None:
    for m in metadata:
        if isinstance(m, annotated_types.Ge):
            out["minimum"] = m.ge
        elif isinstance(m, annotated_types.Gt):
            out["minimum"], out["exclusiveMinimum"] = m.gt, True
        elif isinstance(m, annotated_types.Le):
            out["maximum"] = m.le
        elif isinstance(m, annotated_types.Lt):
            out["maximum"], out["exclusiveMaximum"] = m.lt, True


def _length(metadata: List[Any]) -> Dict[str, Any]:
    found: Dict[str, Any] = {}
    for m in metadata:
        if isinstance(m, annotated_types.MaxLen):
            found["max"] = m.max_length
        elif isinstance(m, annotated_types.MinLen):
            found["min"] = m.min_length
        elif getattr(m, "pattern", None):
            found["pattern"] = m.pattern
    return found


def model_schema(cls: Type[BaseModel], description: Optional[str] = None) -> Dict[str, Any]:
    """The object schema of a model: its fields, required ones, CEL rules."""
    out: Dict[str, Any] = {"type": "object", "description": description or " ".join((cls.__doc__ or "").split()),
                           "properties": {}}
    required = []
    for name, info in cls.model_fields.items():
        key = info.alias or name
        out["properties"][key] = field_schema(info)
        if info.is_required():
            required.append(key)
    if required:
        out["required"] = required
    rules = getattr(cls, "RULES", None)
    if rules:
        out["x-kubernetes-validations"] = copy.deepcopy(list(rules))
    return out


def field_schema(info: FieldInfo) -> Dict[str, Any]:
    raw = next((m for m in info.metadata if isinstance(m, Raw)), None)
    if raw is not None:
        return copy.deepcopy(raw.schema)
    tp, metadata, description = _unwrap_optional(info.annotation), list(info.metadata), info.description
    if typing.get_origin(tp) is typing.Annotated:   # Optional[Annotated[...]]
        inner = FieldInfo.from_annotation(tp)
        tp, metadata, description = inner.annotation, inner.metadata + metadata, description or inner.description
    out = type_schema(tp, metadata, description)
    default = _default(info)
    if default is not None:
        out["default"] = default
    if isinstance(info.json_schema_extra, dict):
        out.update(copy.deepcopy(info.json_schema_extra))
    return out


def _inner(tp: Any) -> Dict[str, Any]:
    """A list item's or a map value's schema (Annotated[X, Field(...)] or a model)."""
    info = FieldInfo.from_annotation(tp)
    return field_schema(info)


def type_schema(tp: Any, metadata: List[Any], description: Optional[str]) -> Dict[str, Any]:
    origin = typing.get_origin(tp)
    desc = {"description": description} if description else {}
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return model_schema(tp, description)
    if origin is Literal:
        values = list(typing.get_args(tp))
        kind = "integer" if all(isinstance(v, int) for v in values) else "string"
        return {"type": kind, **desc, "enum": values}
    if origin in (list, typing.List):
        (item,) = typing.get_args(tp)
        length = _length(metadata)
        out = {"type": "array", **desc, "items": _inner(item), "maxItems": length.get("max", 64)}
        if "min" in length:
            out["minItems"] = length["min"]
        return out
    if origin in (dict, typing.Dict):
        _, value = typing.get_args(tp)
        length = _length(metadata)
        return {"type": "object", **desc, "additionalProperties": _inner(value),
                "maxProperties": length.get("max", 64)}
    if tp is bool:
        return {"type": "boolean", **desc}
    if tp is int or tp is float:
        out = {"type": "integer" if tp is int else "number", **desc}
        _bounds(out, metadata)
        return out
    if tp is str:
        fmt = next((m for m in metadata if isinstance(m, Format)), None)
        if fmt is not None:
            return {"type": "string", "format": fmt.name, **desc}
        length = _length(metadata)
        out = {"type": "string", **desc, "maxLength": length.get("max", SHORT)}
        if "pattern" in length:
            out["pattern"] = length["pattern"]
        if "min" in length:
            out["minLength"] = length["min"]
        return out
    raise TypeError(f"no OpenAPI schema for {tp!r}")


def fill_defaults(node: Dict[str, Any]) -> Dict[str, Any]:
    """Object defaults spelled out in full: the API server checks a default
    against the CEL rules as written, before nested defaults apply; and
    kubectl explain does not print schema defaults, so they are said in words."""
    rules = [r["rule"] for r in node.get("x-kubernetes-validations", [])]
    if "self == oldSelf" in rules:
        node["description"] += " Immutable once the run exists."
    if "default" in node and node.get("type") != "object" and "description" in node:
        node["description"] += f" Default: {json.dumps(node['default'])}."
    if node.get("type") == "object" and "properties" in node:
        for child in node["properties"].values():
            fill_defaults(child)
        if node.get("default") == {}:
            node["default"] = {k: v["default"] for k, v in node["properties"].items() if "default" in v}
    elif node.get("type") == "array":
        fill_defaults(node["items"])
    return node
