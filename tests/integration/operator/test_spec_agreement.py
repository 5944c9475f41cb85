"""Bad input by the hundred: generated MathFinetunes, each sent to the real API
server (server-side dry run: schema, defaults, CEL) and to the project's own
reading of a spec (the operator's plan and Job builders for every stage, the
pipeline's model family, parallel layout and MindFormers config). They must
agree: what the API server accepts the project can run; what it rejects, its
message names the field that was changed.

Each spec is an example with one leaf of the CRD's spec schema set to a value
drawn for that leaf's type: within its bounds or enum, or just outside them,
or of another type. The count tried is printed."""
import copy
import json
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st
from kubernetes.client.exceptions import ApiException

from . import helpers as h

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
SCHEMA = yaml.safe_load((REPO / "crds" / "mathtune.dev_mathfinetunes.yaml").read_text())[
    "spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
EXAMPLES = ("run-cpu.yaml", "seed000-llama3-quota-cot.yaml")
EXAMPLES_COUNT = 400
TRIED: Dict[str, int] = {"accepted": 0, "rejected": 0}


def leaves(node: Dict[str, Any], path: str = "spec") -> List[Tuple[str, Dict[str, Any]]]:
    """(dotted path, schema) of every scalar field outside lists and free-form maps."""
    if node.get("type") == "object" and "properties" in node:
        return [leaf for name, sub in node["properties"].items() for leaf in leaves(sub, f"{path}.{name}")]
    if node.get("type") in ("integer", "number", "string", "boolean"):
        return [(path, node)]
    return []


LEAVES = [leaf for leaf in leaves(SCHEMA) if not leaf[0].startswith(("spec.podTemplates", "spec.scheduling.mindCluster"))]


def values(schema: Dict[str, Any]) -> st.SearchStrategy:
    kind = schema["type"]
    wrong = st.sampled_from([[1], {"a": 1}, "text", 7, True]).filter(
        lambda v: not (kind == "string" and isinstance(v, str)) and not (kind == "boolean" and isinstance(v, bool))
        and not (kind in ("integer", "number") and type(v) is int))
    if "enum" in schema:
        return st.one_of(st.sampled_from(schema["enum"]), st.just("not-one-of-them"), wrong)
    if kind in ("integer", "number"):
        low, high = schema.get("minimum", -10**6), schema.get("maximum", 10**6)
        inside = st.integers(int(low) if kind == "integer" else 0, int(high)) if kind == "integer" else \
            st.floats(float(low), float(high), allow_nan=False)
        outside = st.sampled_from([low - 1, high + 1]) if kind == "integer" else \
            st.sampled_from([float(low) - 0.5, float(high) + 0.5])
        return st.one_of(inside, outside, wrong)
    if kind == "boolean":
        return st.one_of(st.booleans(), wrong)
    return st.one_of(st.text(max_size=12), st.sampled_from(["", "/data/x.jsonl", "s3://b/k", "5GB", "auto", "8"]),
                     wrong)


def _set(doc: Dict[str, Any], dotted: str, value: Any) -> None:
    node = doc
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def runnable(run: Dict[str, Any]) -> None:
    """The project's reading of an accepted (defaulted) run; raises what it cannot take."""
    from mathtune_operator import builders, plan
    from mathtune_operator.resource import Run
    from mathtune_pipeline.mindformers import families, render

    resource = Run.of(run)   # the API model takes what the API server took, as the operator's pass does
    for stage in plan.stages(resource.spec):
        builders.job(resource, stage)
    spec = resource.spec
    families.family(spec)
    # seqLength "auto" is tokenize's to resolve (from the data); train renders with what it found.
    resolved = 512 if spec.data.seq_length == "auto" else None
    render.finetune_config(spec, dataset_dir="/data/x", load_checkpoint="", save_checkpoint_steps=1,
                           seq_length=resolved)


@settings(max_examples=EXAMPLES_COUNT, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(data=st.data())
def test_the_api_server_and_the_project_agree(data, crd_namespace):
    namespace, custom = crd_namespace
    example = data.draw(st.sampled_from(EXAMPLES), label="example")
    path, schema = data.draw(st.sampled_from(LEAVES), label="field")
    value = data.draw(values(schema), label="value")
    doc = h.run_doc(example, "agree")
    doc = copy.deepcopy(doc)
    _set(doc, path, value)
    try:
        made = custom.create_namespaced_custom_object(h.GROUP, h.VERSION, namespace, h.PLURAL, doc, dry_run="All")
    except ApiException as exc:
        assert exc.status == 422, (path, value, exc.status, exc.body)
        message = json.loads(exc.body)["message"]
        leaf = path.rsplit(".", 1)[1]
        assert path in message or leaf in message, f"{path} = {value!r} was refused without naming it: {message}"
        TRIED["rejected"] += 1
        return
    made["metadata"].update(namespace=namespace, uid="uid-1", generation=1)
    try:
        runnable(made)
    except Exception as exc:  # noqa: BLE001 - any failure is a disagreement to report
        pytest.fail(f"the API server accepted {path} = {value!r} but the project cannot run it: "
                    f"{type(exc).__name__}: {exc}")
    TRIED["accepted"] += 1


@pytest.fixture(scope="module")
def crd_namespace(k8s_api, crd):
    with h.scratch_namespace(k8s_api, "agreement") as made:
        yield made
    print(f"\nspecs tried: {sum(TRIED.values())} ({TRIED['accepted']} accepted and runnable, "
          f"{TRIED['rejected']} rejected naming the field)")
