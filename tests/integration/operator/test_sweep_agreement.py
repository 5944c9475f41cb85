"""Bad sweeps by the hundred: generated MathFinetuneSweeps, each sent to the
real API server (server-side dry run: schema, defaults, CEL) and to the
operator's own first pass over a sweep (sweeps/sweep_pass.py: the model,
every parameter's values written into the template, Optuna's first trials and
the MathFinetunes made of them). They must agree: what the API server accepts
the operator can run; what it rejects, its message names the field changed.

"The operator can run it" means its first pass over the sweep the API server
returned (defaults applied) either makes trials, each of which the API server
takes (dry run again) and the project can run (the MathFinetune agreement's
`runnable`), or fails the sweep with `SpecInvalid` naming `spec.parameters[i]`
because a value of that parameter is one the template cannot take
(docs/sweeps.md: `share: 1.5`, or a list item the template does not have).
A trial the API server refuses (a drawn value its CEL rules refuse together
with another field of the template, lrEnd above the learning rate drawn) is
recorded as a failed trial in the API server's words (`refuse_trials`, which
the controller calls on a 422). Anything else (the sweep model refusing what
the API server took, an exception) is a disagreement.

Each sweep is an example with one change: a scalar leaf of the sweep spec's
schema (template aside) set to a value drawn for its type; one field of a
parameter set to a drawn value or removed; low and high of a parameter
swapped or made equal, or a log scale from zero or below; a parameter added,
plausible (a searchable path with values of its field's type) or wild; the
parameter list emptied or overfull; or one of a few changes of the template
that its parameters then cannot fit. A refusal must name the changed field,
or the field of the CEL rule that reads it (`fieldPath`): another field of
the same parameter for the parameter's own rules, `spec.maxTrials` or
`spec.parameters` for the grid's rules, the duplicate for a path already
searched. The count tried is printed."""
import copy
import json
import re
import time
from typing import Any, Dict, List, Set, Tuple

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st
from kubernetes.client.exceptions import ApiException

from tests import examples

from . import helpers as h
from .test_spec_agreement import leaves, runnable, values

pytestmark = pytest.mark.integration

SWEEPS = "mathfinetunesweeps"
SCHEMA = yaml.safe_load(h.SWEEP_CRD.read_text())["spec"]["versions"][0]["schema"]["openAPIV3Schema"][
    "properties"]["spec"]
EXAMPLES_COUNT = 2000
TRIED: Dict[str, int] = {"accepted": 0, "refused by the operator": 0, "trials refused, recorded as failed": 0,
                         "rejected": 0}
# Scalar leaves of the sweep's own fields: the template's are the MathFinetune agreement's.
LEAVES = [leaf for leaf in leaves(SCHEMA) if not leaf[0].startswith("spec.template")]


def _bases() -> Dict[str, Dict[str, Any]]:
    """Every sweep example, and the first as a grid the size of its maxTrials
    (two int epochs times two replay counts), so the grid's rules are near."""
    out = {}
    for path in examples.SWEEPS:
        doc = yaml.safe_load(path.read_text())
        doc["metadata"] = {"name": "agree"}
        out[path.name] = doc
    grid = copy.deepcopy(out[examples.SWEEPS[0].name])
    grid["spec"].update(algorithm="grid", maxTrials=4, parameters=[
        {"path": "training.epochs", "type": "int", "low": 6, "high": 12, "step": 6},
        {"path": "data.mix[0].count", "type": "categorical", "values": [150, 300]}])
    out[f"{examples.SWEEPS[0].name} (grid)"] = grid
    return out


BASES = _bases()


def _valid_paths() -> List[str]:
    """One concrete path for each alternative of the API server's own path pattern."""
    from mathtune_api.sweep_paths import path_pattern

    return [alt.replace(r"\[[0-9]+\]", "[0]").replace(r"\.[A-Za-z0-9_-]+", ".mass").replace("\\.", ".")
            for alt in path_pattern()[2:-2].split("|")]


VALID_PATHS = _valid_paths()
# Searchable in form but naming an item or block the example's template does not have.
ABSENT_PATHS = ["data.mix[1].share", "data.mix[3].count", "data.classify.extraRules[0].type"]
INVALID_PATHS = ["storage.size", "model.family", "training.bogus", "training", "lora", "", "training.epochs.x",
                 "data.mix.share", "data.mix[-1].share", "Training.epochs", " training.epochs",
                 "training.epochs ", "evaluation.maxSamples", "a" * 254]


class _Deleted:
    def __repr__(self) -> str:
        return "<removed>"


DELETED = _Deleted()
RAW = st.sampled_from([0, 1, 6, 12, 150, -3, "0.2", "1.5", "1e-4", "true", "false", "bucketed", "[wq, wv]",
                       "[wq, bogus]", "text", "", 1.5, None, [1]])
NUMBERS = st.one_of(st.sampled_from([-1, 0, 0.0005, 0.001, 0.5, 1, 1.5, 2, 6, 12, 32, 300, 10 ** 6]),
                    st.floats(-10, 1000, allow_nan=False))
FIELD_VALUES = {
    "path": st.one_of(st.sampled_from(VALID_PATHS), st.sampled_from(ABSENT_PATHS), st.sampled_from(INVALID_PATHS),
                      st.sampled_from([7, DELETED])),
    "type": st.sampled_from(["float", "int", "categorical", "bogus", 7, DELETED]),
    "low": st.one_of(NUMBERS, st.sampled_from(["1", True, [1], DELETED])),
    "high": st.one_of(NUMBERS, st.sampled_from(["1", True, [1], DELETED])),
    "log": st.sampled_from([True, False, "true", 1, DELETED]),
    "step": st.sampled_from([-1, 0, 0.0005, 0.5, 1, 2, 6, 100, "1", DELETED]),
    "values": st.one_of(st.lists(RAW, max_size=4), st.sampled_from(["x", 7, DELETED])),
}
# Which fields of a parameter each of its CEL rules reads, by the field the rule names (its fieldPath).
ITEM_RULES = {"values": {"type", "values"}, "low": {"type", "low", "high"}, "log": {"log", "type", "low"},
              "step": {"step", "type"}}
GRID_FIELDS = {"type", "low", "high", "step", "values"}   # what the grid's rules read of each parameter
TEMPLATE_CHANGES = [
    ("spec.template.data.mix", DELETED),             # data.mix[0].count names an item no longer there
    ("spec.template.evaluation.epochs", [12]),       # 6 epochs then breaks the template's own rule
    ("spec.template.evaluation.epochs", [13]),       # the template alone breaks it
    ("spec.template.training.epochs", 3),
]


def _candidates(schema: Dict[str, Any]) -> List[Any]:
    """Categorical values for a field: of its type, and a few it cannot take."""
    if "enum" in schema:
        return [*schema["enum"], "not-one-of-them"]
    kind = schema.get("type")
    if kind == "boolean":
        return ["true", "false", "maybe"]
    if kind == "array":
        return ["[wq, wv]", "[wq]", "[wq, wk, wv, wo]", "[]", "[Bad-Name]"]
    if kind in ("integer", "number"):
        return [0, 1, 2, 16, "0.5", "1e-4", "abc"]
    if schema.get("x-kubernetes-int-or-string"):
        return [64, 128, "auto", 8]
    return ["text", "", "4GB", "/data/x.jsonl", "abc123"]


@st.composite
def plausible_parameter(draw) -> Dict[str, Any]:
    """A searchable path with a search of its field's type (mostly), its bounds
    near the field's: the trials these make are the interesting agreement."""
    from mathtune_api.sweep_values import field_schema

    path = draw(st.sampled_from(VALID_PATHS + ABSENT_PATHS), label="new parameter's path")
    schema = field_schema(path)
    kind = schema.get("type")
    numeric = kind in ("integer", "number") and "enum" not in schema
    if not numeric or draw(st.integers(0, 4)) == 0:
        values = draw(st.lists(st.sampled_from(_candidates(schema)), min_size=1, max_size=3))
        return {"path": path, "type": "categorical", "values": values}
    top = min(float(schema.get("maximum", 64)), 64.0)
    bottom = float(schema.get("minimum", 0))
    if kind == "integer":
        low, high = sorted(draw(st.lists(st.integers(int(bottom) - 1, int(top) + 1), min_size=2, max_size=2)))
    else:
        low, high = sorted(draw(st.lists(st.floats(bottom, top), min_size=2, max_size=2)))
    item: Dict[str, Any] = {"path": path, "type": "int" if kind == "integer" else "float", "low": low, "high": high}
    if draw(st.booleans()):
        item["log"] = low > 0 or draw(st.booleans())
    if draw(st.booleans()):
        item["step"] = draw(st.sampled_from([1, 2, 4]) if kind == "integer" else
                            st.sampled_from([0.001, 0.01, 0.1, 0.25, 1.0]))
    return item


@st.composite
def wild_parameter(draw) -> Dict[str, Any]:
    item = {}
    for name, strategy in FIELD_VALUES.items():
        if name in ("path", "type") or draw(st.booleans()):
            value = draw(strategy, label=f"new parameter's {name}")
            if value is not DELETED:
                item[name] = value
    return item


def _apply(node: Dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    if value is DELETED:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value


def mutate(data, doc: Dict[str, Any]) -> Tuple[str, Set[str]]:
    """One change to the sweep: (what was changed, for messages; the names a
    refusal of it may give: the field itself or the field of a rule reading it)."""
    spec = doc["spec"]
    params: List[Dict[str, Any]] = spec["parameters"]
    kind = data.draw(st.sampled_from(["leaf", "leaf", "leaf", "field", "field", "field", "relation", "new", "new",
                                      "list", "template"]), label="change")
    names: Set[str] = set()
    if kind == "leaf":
        path, schema = data.draw(st.sampled_from(LEAVES), label="field")
        value = data.draw(values(schema), label="value")
        _apply(doc, path, value)
        names.add(path)
        touched: Set[str] = {path.removeprefix("spec.")}
        described = f"{path} = {value!r}"
    elif kind in ("field", "relation"):
        i = data.draw(st.integers(0, len(params) - 1), label="parameter")
        item = params[i]
        if kind == "field":
            name = data.draw(st.sampled_from(sorted(FIELD_VALUES)), label="parameter field")
            change = {name: data.draw(FIELD_VALUES[name], label="value")}
        else:
            how = data.draw(st.sampled_from(["swap", "equal", "log from zero or below", "no high"]), label="how")
            if how == "swap":
                change = {"low": item.get("high"), "high": item.get("low")}
            elif how == "equal":
                change = {"low": item.get("high", 1)}
            elif how == "no high":
                change = {"high": DELETED}
            else:
                change = {"log": True, "low": data.draw(st.sampled_from([0, -1, -0.5]), label="low")}
            change = {k: DELETED if v is None else v for k, v in change.items()}
        for name, value in change.items():
            _apply(item, name, value)
            names.add(f"spec.parameters[{i}].{name}")
            names.update(f"spec.parameters[{i}].{rule}" for rule, reads in ITEM_RULES.items() if name in reads)
            if name == "path" and isinstance(value, str):
                names.add('Duplicate value: {"path":' + json.dumps(value) + "}")
        touched = {f"parameters.{name}" for name in change}
        described = f"spec.parameters[{i}] " + ", ".join(f"{k} = {v!r}" for k, v in change.items())
    elif kind == "new":
        item = data.draw(st.one_of(plausible_parameter(), wild_parameter()), label="new parameter")
        i = len(params)
        params.append(item)
        names.add(f"spec.parameters[{i}].")
        if isinstance(item.get("path"), str):
            names.add('Duplicate value: {"path":' + json.dumps(item["path"]) + "}")
        touched = {f"parameters.{name}" for name in item}
        described = f"spec.parameters[{i}] = {item!r}"
    elif kind == "list":
        count = data.draw(st.sampled_from([0, 9]), label="parameters")
        spec["parameters"] = [{"path": f"data.mix[{n}].count", "type": "int", "low": 1, "high": 2}
                              for n in range(count)]
        names.add("spec.parameters:")
        touched = set()
        described = f"spec.parameters: {count} items"
    else:
        path, value = data.draw(st.sampled_from(TEMPLATE_CHANGES), label="template change")
        _apply(doc, path, value)
        names.add(path)
        touched = set()
        described = f"{path} = {value!r}"
    grid_inputs = {"algorithm", "partialGrid", "maxTrials"} | {f"parameters.{f}" for f in GRID_FIELDS}
    if spec.get("algorithm", "tpe") == "grid" and touched & grid_inputs:
        names.update({"spec.maxTrials:", "spec.parameters:"})   # the fieldPaths of the grid's two rules
    return described, names


def operator_first_pass(made: Dict[str, Any], custom, namespace: str, described: str) -> str:
    """The operator's first pass over an accepted (defaulted) sweep; fails the
    test on anything but trials it can make or the documented refusal."""
    from mathtune_api.sweep import MathFinetuneSweepSpec
    from mathtune_operator.sweeps.sweep_pass import refuse_trials, sweep_pass
    from pydantic import ValidationError

    made["metadata"].update(namespace=namespace, uid="uid-1", generation=1)
    spec = made["spec"]
    try:
        MathFinetuneSweepSpec.model_validate(spec)
    except ValidationError as exc:
        pytest.fail(f"the API server accepted {described} but the operator's sweep model refuses it: "
                    f"{exc.errors(include_url=False)[0]}")
    try:
        out = sweep_pass(made, [], time.time())
    except Exception as exc:  # noqa: BLE001 - any failure is a disagreement to report
        pytest.fail(f"the API server accepted {described} but the operator's first pass over it raised "
                    f"{type(exc).__name__}: {exc}")
    if not out.create:
        ready = (out.status.get("conditions") or [{}])[0]
        refused = re.match(r"the sweep cannot run: spec\.parameters\[(\d+)\]: (.*)", ready.get("message") or "")
        assert out.status.get("phase") == "Failed" and ready.get("reason") == "SpecInvalid" and refused, \
            f"the API server accepted {described} but the operator made no trial: {out.status}"
        parameter = spec["parameters"][int(refused.group(1))]
        # check_values: "<the parameter's path> = <the value>: <why the template cannot take it>"
        assert refused.group(2).startswith(f"{parameter['path']} = "), (described, ready["message"])
        return "refused by the operator"
    outcome = "accepted"
    for body in out.create:
        try:
            trial = custom.create_namespaced_custom_object(h.GROUP, h.VERSION, namespace, h.PLURAL, body,
                                                           dry_run="All")
        except ApiException as exc:
            # A value the template's CEL rules refuse together with another
            # field (lrEnd above the learning rate drawn): the controller
            # records the trial as failed in the API server's words.
            assert exc.status == 422, (described, exc.status, exc.body)
            why = json.loads(exc.body).get("message")
            name = body["metadata"]["name"]
            refuse_trials(out, {name: why})
            record = next(r for r in out.status["trials"] if r["name"] == name)
            assert record["state"] == "Failed" and why in record["message"], (described, record)
            outcome = "trials refused, recorded as failed"
            continue
        trial["metadata"].update(namespace=namespace, uid="uid-2", generation=1)
        try:
            runnable(trial)
        except Exception as exc:  # noqa: BLE001
            pytest.fail(f"the API server accepted {described} and the operator's trial "
                        f"{body['metadata']['annotations']}, but the project cannot run it: "
                        f"{type(exc).__name__}: {exc}")
    return outcome


@settings(max_examples=EXAMPLES_COUNT, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(data=st.data())
def test_the_api_server_and_the_operator_agree_on_sweeps(data, sweep_namespace):
    namespace, custom = sweep_namespace
    base = data.draw(st.sampled_from(sorted(BASES)), label="example")
    doc = copy.deepcopy(BASES[base])
    described, names = mutate(data, doc)
    try:
        made = custom.create_namespaced_custom_object(h.GROUP, h.VERSION, namespace, SWEEPS, doc, dry_run="All")
    except ApiException as exc:
        assert exc.status == 422, (described, exc.status, exc.body)
        message = json.loads(exc.body)["message"]
        assert any(name in message for name in names), \
            f"{described} was refused without naming it (any of {sorted(names)}): {message}"
        TRIED["rejected"] += 1
        return
    TRIED[operator_first_pass(made, custom, namespace, described)] += 1


@pytest.fixture(scope="module")
def sweep_namespace(k8s_api, crd):
    with h.scratch_namespace(k8s_api, "sweep-agreement") as made:
        yield made
    print(f"\nsweeps tried: {sum(TRIED.values())} ({TRIED['accepted']} accepted, their first trials made and "
          f"runnable; {TRIED['refused by the operator']} accepted and failed by the operator naming the parameter "
          f"whose values the template cannot take; {TRIED['trials refused, recorded as failed']} accepted whose "
          f"trials the API server refused, recorded as failed trials; {TRIED['rejected']} rejected naming the "
          f"field)")
