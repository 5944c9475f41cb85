"""The pipeline's spec defaults are the CRD's.

On a cluster the API server fills in the CRD's defaults before any stage runs;
`run-local` has no API server, so the pipeline parses a run file with the API
package's model. This test applies the CRD's structural defaults the way the
API server does and demands the same spec from the model, for every example.
"""
import copy
from pathlib import Path

import pytest
import yaml

from mathtune_pipeline.spec import parse
from tests import examples

REPO = Path(__file__).resolve().parents[3]
CRD = REPO / "crds" / "mathtune.dev_mathfinetunes.yaml"
EXAMPLES = examples.RUNS


def _spec_schema():
    crd = yaml.safe_load(CRD.read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1")
    return version["schema"]["openAPIV3Schema"]["properties"]["spec"]


def apply_schema_defaults(value, schema):
    """Structural defaulting as kube-apiserver does it: a missing property with
    a `default` gets it, then defaulting recurses into objects and arrays."""
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for name, sub in props.items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
        for name, sub in props.items():
            if name in value:
                value[name] = apply_schema_defaults(value[name], sub)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for name in value:
                if name not in props:
                    value[name] = apply_schema_defaults(value[name], extra)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        value = [apply_schema_defaults(item, schema["items"]) for item in value]
    return value


def _leaves(value, prefix=""):
    if isinstance(value, dict):
        out = {}
        for key, sub in value.items():
            out.update(_leaves(sub, f"{prefix}.{key}" if prefix else key))
        return out
    return {prefix: value}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_pipeline_defaults_equal_the_crds(example):
    spec = yaml.safe_load(example.read_text())["spec"]
    by_api_server = _leaves(apply_schema_defaults(copy.deepcopy(spec), _spec_schema()))
    by_pipeline = _leaves(parse(spec).wire())
    # Every value either side would set, the other sets alike.
    keys = set(by_api_server) | set(by_pipeline)
    differing = {k: (by_api_server.get(k, "<absent>"), by_pipeline.get(k, "<absent>")) for k in sorted(keys)
                 if by_api_server.get(k, "<absent>") != by_pipeline.get(k, "<absent>")}
    assert not differing, f"spec defaults differ (CRD, pipeline): {differing}"


def test_there_are_examples_to_compare():
    assert len(EXAMPLES) >= 6, EXAMPLES
