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
