"""The run spec as the stages see it: a MathFinetune `spec` with defaults applied.

On the cluster the API server has already applied the CRD's defaults and
rules; locally (`run-local`) nobody has, so a run file is parsed by the API
package's model (crds/mathtune_api), which applies the same defaults and
refuses what the model refuses, naming the field.
"""
import json
from pathlib import Path
from typing import Any, Dict, Tuple, Union

import yaml
from mathtune_api import MathFinetuneSpec, SpecInvalid, parse_spec

from .errors import SpecError

__all__ = ["MathFinetuneSpec", "load_spec", "parse"]


def parse(spec: Any) -> MathFinetuneSpec:
    """A whole spec checked by the model, its defaults applied."""
    try:
        return parse_spec(spec)
    except SpecInvalid as exc:
        raise SpecError(exc.field, exc.expected) from None


def load_spec(path: Union[str, Path]) -> Tuple[MathFinetuneSpec, Dict[str, Any]]:
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
    return parse(spec), metadata

