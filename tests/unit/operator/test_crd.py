"""The CRD file: generated, structural, described, defaulted, validated by CEL."""
import subprocess
import sys

import yaml
from tests import examples

from .conftest import CRD_FILE, EXAMPLES, REPO, load_crd, schema


def _walk(node, path="$"):
    yield path, node
    for key, child in (node.get("properties") or {}).items():
        yield from _walk(child, f"{path}.{key}")
    if isinstance(node.get("items"), dict):
        yield from _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{path}{{}}")


def test_yaml_is_what_the_generator_writes():
    proc = subprocess.run([sys.executable, str(REPO / "crds" / "generate.py"), "--check"], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr


def test_names_and_subresources():
    crd = load_crd()
    spec = crd["spec"]
    assert crd["metadata"]["name"] == "mathfinetunes.mathtune.dev"
    assert spec["group"] == "mathtune.dev" and spec["names"]["kind"] == "MathFinetune"
    assert spec["names"]["shortNames"] == ["mft"]
    version = spec["versions"][0]
    assert version["name"] == "v1alpha1" and version["subresources"] == {"status": {}}
    columns = [c["name"].upper() for c in version["additionalPrinterColumns"] if c.get("priority", 0) == 0]
    assert columns == ["STAGE", "PROGRESS", "LOSS", "F1", "EM", "MATH-ACC", "AGE"]


def test_schema_is_structural_and_every_spec_field_is_described():
    """Structural: every node has a type (or int-or-string); no field is left
    to x-kubernetes-preserve-unknown-fields. Every spec field has a
    description for kubectl explain."""
    root = schema()
    for path, node in _walk(root["properties"]["spec"], "spec"):
        assert node.get("type") or node.get("x-kubernetes-int-or-string"), path
        assert "x-kubernetes-preserve-unknown-fields" not in node, path
        assert len(node.get("description", "")) > 10, f"{path} has no description"
    for path, node in _walk(root["properties"]["status"], "status"):
        assert node.get("type"), path
        assert "x-kubernetes-preserve-unknown-fields" not in node, path


def test_issue_fields_are_expressible():
    spec = schema()["properties"]["spec"]["properties"]
    assert spec["model"]["properties"]["family"]["enum"] == ["llama3-8b", "internlm-7b", "llama-7b", "tiny-llama"]
    for field in ("rank", "alpha", "dropout", "targetModules"):
        assert field in spec["lora"]["properties"]
    for field in ("epochs", "batchSize", "optimizer", "lrSchedule", "sinkMode", "checkpoint"):
        assert field in spec["training"]["properties"]
    assert spec["resources"]["properties"]["npusPerNode"]["enum"] == [1, 2, 4, 8]
    assert set(spec["evaluation"]["properties"]["gate"]["properties"]["mode"]["enum"]) == {"relative", "absolute"}
    for field in ("pvcName", "size", "storageClassName"):
        assert field in spec["storage"]["properties"]
    for field in ("nodeSelector", "tolerations", "priorityClassName", "schedulerName", "queue"):
        assert field in spec["scheduling"]["properties"]
    for field in ("backoffLimit", "activeDeadlineSeconds", "ttlSecondsAfterFinished", "suspend"):
        assert field in spec["runPolicy"]["properties"]


def test_cel_rules_cover_the_cross_field_checks():
    rules = []
    for _, node in _walk(schema()):
        rules += [r["rule"] for r in node.get("x-kubernetes-validations", [])]
    text = "\n".join(rules)
    for needle in ("self.npusPerNode * self.nodes", "tiny-llama", "self.lrEnd <= self.learningRate",
                   "self.everyEpoch != (self.saveSteps > 0)", "self.schedulerName == 'volcano'",
                   "self.evaluation.epochs.all", "self == oldSelf", "size(self.metadata.name) <= 40"):
        assert needle in text, needle
    # Every rule's message names the field it is about.
    for _, node in _walk(schema()):
        for r in node.get("x-kubernetes-validations", []):
            assert "spec." in r["message"] or "metadata.name" in r["message"], r


def test_object_defaults_are_complete():
    """A default object must satisfy the CEL rules by itself (the API server
    checks it before nested defaults apply): nested defaults are spelled out."""
    for path, node in _walk(schema()):
        if node.get("type") == "object" and "default" in node and node.get("properties"):
            for key, child in node["properties"].items():
                if "default" in child:
                    assert key in node["default"], f"{path}.default lacks {key}"


def test_every_seed_has_an_example():
    names = [p.name for p in examples.RUNS]
    for seed in ("seed000", "seed001", "seed002", "seed003", "seed004"):
        assert any(n.startswith(seed + "-") for n in names), f"no example for {seed}"
    assert "run-cpu.yaml" in names
    for path in examples.RUNS:
        doc = yaml.safe_load(path.read_text())
        assert doc["apiVersion"] == "mathtune.dev/v1alpha1" and doc["kind"] == "MathFinetune", path
        assert len(doc["metadata"]["name"]) <= 40


def test_cpu_example_is_the_cpu_profile():
    doc = yaml.safe_load((EXAMPLES / "run-cpu.yaml").read_text())
    spec = doc["spec"]
    assert spec["profile"] == "cpu" and spec["model"]["family"] == "tiny-llama"
    assert spec["resources"]["nodes"] == 1 and spec["resources"]["npusPerNode"] == 2


def test_file_is_valid_yaml_with_header():
    text = CRD_FILE.read_text()
    assert text.startswith("# Generated by crds/generate.py")
