"""Shared helpers of the operator's unit tests: the CRD schema and runs built
from the examples with the CRD's defaults applied, as the API server would."""
import copy
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
CRD_FILE = REPO / "crds" / "mathtune.dev_mathfinetunes.yaml"
EXAMPLES = REPO / "examples"


def load_crd() -> dict:
    return yaml.safe_load(CRD_FILE.read_text())


def schema() -> dict:
    return load_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def apply_defaults(node: dict, value):
    """Structural defaulting the way the API server does it: defaults fill
    absent fields, then recurse into objects and arrays."""
    if node.get("type") == "object":
        if value is None:
            return None
        out = dict(value)
        for key, child in (node.get("properties") or {}).items():
            if key not in out and "default" in child:
                out[key] = copy.deepcopy(child["default"])
            if key in out:
                out[key] = apply_defaults(child, out[key])
        if "additionalProperties" in node and isinstance(node["additionalProperties"], dict):
            for key in out:
                if key not in (node.get("properties") or {}):
                    out[key] = apply_defaults(node["additionalProperties"], out[key])
        return out
    if node.get("type") == "array" and isinstance(value, list):
        return [apply_defaults(node["items"], v) for v in value]
    return value


def run_from(path: Path, namespace="ns1", uid="uid-1", generation=1) -> dict:
    doc = yaml.safe_load(path.read_text())
    spec_schema = schema()["properties"]["spec"]
    doc["spec"] = apply_defaults(spec_schema, doc["spec"])
    doc["metadata"].update(namespace=namespace, uid=uid, generation=generation)
    return doc


@pytest.fixture
def cpu_run():
    return run_from(EXAMPLES / "run-cpu.yaml")


@pytest.fixture
def seed000():
    return run_from(EXAMPLES / "seed000-llama3-quota-cot.yaml")
