"""The run spec as the stages see it: a MathFinetune `spec` with defaults applied.

On the cluster the API server has already applied the CRD's defaults; locally
(`run-local`) nobody has, so the same defaults apply here: spec_defaults.py,
generated from the CRD's schema by crds/generate.py (tests/unit/contract/
test_spec_defaults.py applies both ways to every example).
"""
import copy
import json
from pathlib import Path
from typing import Any, Dict, Tuple, Union

import yaml

from .errors import SpecError
from .spec_defaults import DEFAULTS, OPTIONAL_BLOCKS

# Maps whose keys are the user's (not schema fields): never merged key by key.
_OPAQUE_MAPS = {("data", "sample", "quotas"), ("scheduling", "nodeSelector"),
                ("evaluation", "baseScores")}
# Blocks whose presence is the choice (the CRD gives them no default of their
# own, so the API server leaves them out when the user does): their fields'
# defaults apply only when the block is given.
_OPTIONAL_BLOCKS = {(name,) for name in OPTIONAL_BLOCKS}


def _merge(defaults: Any, given: Any, path: Tuple[str, ...]) -> Any:
    if isinstance(defaults, dict) and isinstance(given, dict) and path not in _OPAQUE_MAPS:
        out = copy.deepcopy(defaults)
        for key, value in given.items():
            out[key] = _merge(defaults.get(key), value, path + (key,)) if key in defaults else copy.deepcopy(value)
        for key in defaults:
            if key not in given and path + (key,) in _OPTIONAL_BLOCKS:
                del out[key]
        return out
    if given is None:
        return copy.deepcopy(defaults)
    return copy.deepcopy(given)


def with_defaults(spec: Dict[str, Any]) -> Dict[str, Any]:
    if not isinstance(spec, dict):
        raise SpecError("spec", "a mapping")
    return _merge(DEFAULTS, spec, ())


def load_spec(path: Union[str, Path]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Read a run file: a whole MathFinetune resource or a bare spec, YAML or JSON.

    Returns (spec with defaults, metadata). Metadata has at least `name`.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError("--spec", f"a readable run file ({exc})") from exc
    try:
        doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise SpecError("--spec", f"valid YAML or JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise SpecError("--spec", "a mapping at the top level")
    if "spec" in doc:
        metadata = dict(doc.get("metadata") or {})
        spec = doc["spec"]
    else:
        metadata, spec = {}, doc
    metadata.setdefault("name", path.stem)
    return with_defaults(spec), metadata


def get(spec: Dict[str, Any], dotted: str) -> Any:
    """spec value at a dotted path, e.g. get(spec, 'lora.rank')."""
    node: Any = spec
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise SpecError(f"spec.{dotted}", "a value (missing)")
        node = node[part]
    return node
