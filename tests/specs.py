"""Whole specs for tests that run a stage from a run file.

A stage parses its run file with the API model (crds/mathtune_api), which
holds the blocks the CRD requires (model, data with its source, evaluation,
prediction) to be there, as the API server does. A test about one block
writes that block and takes the rest from here: the defaults, and a source
path for stages that never read it.
"""
from typing import Any, Dict

UNREAD_SOURCE = {"uri": "train.jsonl"}


def whole(spec: Dict[str, Any]) -> Dict[str, Any]:
    out = {"model": {}, "evaluation": {}, "prediction": {}, **spec}
    out["data"] = {"source": UNREAD_SOURCE, **spec.get("data", {})}
    return out


def typed(spec: Dict[str, Any]):
    """A spec fragment completed as `whole` does and parsed by the model, as a stage receives it."""
    from mathtune_pipeline.spec import parse

    return parse(whole(spec))


def _merged(base: Dict[str, Any], change: Dict[str, Any]) -> Dict[str, Any]:
    out = dict(base)
    for key, value in change.items():
        out[key] = _merged(out.get(key) or {}, value) if isinstance(value, dict) else value
    return out


def changed(spec, change: Dict[str, Any]):
    """A parsed spec with `change` merged into it block by block, parsed again (a spec is frozen)."""
    from mathtune_pipeline.spec import parse

    return parse(_merged(spec.wire(), change))
