"""One pass over a sweep (sweeps/sweep_pass.py) against trials whose runs
the test ends by writing their status as the operator's run passes would:
the search, its record, restarts and bad trials. Optuna is the real one."""
import copy
import json
from typing import Dict, List

import pytest
import yaml

from mathtune_operator import names
from tests import examples
from mathtune_operator.sweeps.sweep_pass import sweep_pass

from .conftest import REPO

SWEEP_CRD = REPO / "crds" / "mathtune.dev_mathfinetunesweeps.yaml"
TEMPLATE = {"profile": "cpu", "model": {"family": "tiny-llama"},
            "data": {"source": {"uri": "train.jsonl"}, "mix": [{"source": {"uri": "mix.jsonl"}, "share": 0.2}]},
            "evaluation": {"dataset": {"uri": "squad.json"}}, "prediction": {"dataset": {"uri": "math.jsonl"}}}
LR = {"path": "training.lrSchedule.learningRate", "type": "float", "low": 1e-4, "high": 1e-2, "log": True}
EPOCHS = {"path": "training.epochs", "type": "int", "low": 1, "high": 4}
SHARE = {"path": "data.mix[0].share", "type": "categorical", "values": ["0.1", "0.3"]}
MODULES = {"path": "lora.targetModules", "type": "categorical", "values": ["[wq, wv]", "[wq, wk, wv, wo]"]}


def sweep_body(**spec) -> Dict:
    body = {"apiVersion": names.API_VERSION, "kind": names.SWEEP_KIND,
            "metadata": {"name": "sw", "namespace": "ns1", "uid": "sweep-uid", "generation": 1},
            "spec": {"template": copy.deepcopy(TEMPLATE), "parameters": [LR, EPOCHS], **spec}}
    return body


class World:
    """The trials that exist (MathFinetunes the sweep made) and passes over the sweep."""

    def __init__(self, sweep: Dict):
        self.sweep, self.runs, self.now = sweep, {}, 1000.0

    def step(self):
        self.now += 10
        out = sweep_pass(self.sweep, list(self.runs.values()), self.now)
        for body in out.create:
            assert body["metadata"]["name"] not in self.runs, f"{body['metadata']['name']} made twice"
            self.runs[body["metadata"]["name"]] = copy.deepcopy(body)
        for name, why in out.prune.items():  # as the controller does: annotate and suspend the run
            self.runs[name]["metadata"]["annotations"][names.ANNOTATION_PRUNED] = why
            self.runs[name]["spec"].setdefault("runPolicy", {})["suspend"] = True
        self.sweep["status"] = out.status
        return out

    def finish(self, name: str, accuracy: float, f1: float, passed: bool, epochs=None):
        self.runs[name]["status"] = {"phase": "Succeeded", "completionTime": "2026-01-01T00:10:00Z", "results": {
            "mathAccuracy": accuracy, "mathAccuracyContestRule": accuracy - 0.01, "f1": f1, "em": f1 - 5,
            "baseF1": 80.0, "gatePassed": passed, "bestEpoch": 1,
            "epochs": epochs or {"1": {"accuracy": accuracy, "f1": f1}}}}

    def fail(self, name: str, why: str = "stage train failed"):
        self.runs[name]["status"] = {"phase": "Failed", "conditions": [
            {"type": "Ready", "status": "False", "reason": "StageFailed", "message": why}]}

    def running(self) -> List[str]:
        return [n for n, r in self.runs.items() if (r.get("status") or {}).get("phase") is None]


def test_a_sweep_makes_parallelism_trials_owned_and_labelled(tmp_path):
    world = World(sweep_body(parallelism=3, maxTrials=5))
    out = world.step()
    assert [b["metadata"]["name"] for b in out.create] == ["sw-0", "sw-1", "sw-2"]
    trial = out.create[0]
    assert trial["metadata"]["ownerReferences"][0] == {
        "apiVersion": names.API_VERSION, "kind": "MathFinetuneSweep", "name": "sw", "uid": "sweep-uid",
        "controller": True, "blockOwnerDeletion": True}
    assert trial["metadata"]["labels"][names.LABEL_SWEEP] == "sw"
    params = json.loads(trial["metadata"]["annotations"][names.ANNOTATION_PARAMS])
    assert trial["spec"]["training"]["lrSchedule"]["learningRate"] == json.loads(
        params["training.lrSchedule.learningRate"])
    assert 1 <= trial["spec"]["training"]["epochs"] <= 4 and trial["spec"]["model"]["family"] == "tiny-llama"
    status = world.sweep["status"]
    assert status["phase"] == "Running" and status["counts"] == {"running": 3, "succeeded": 0, "infeasible": 0,
                                                                 "failed": 0, "pruned": 0, "total": 3}
    assert [e.reason for e in out.events] == ["TrialCreated"] * 3
    assert world.step().create == []   # no slot free: nothing more


def test_the_gate_is_a_constraint_and_the_best_is_the_best_that_passed():
    world = World(sweep_body(parallelism=3, maxTrials=3))
    world.step()
    world.finish("sw-0", 0.30, 75.0, True)
    world.finish("sw-1", 0.90, 60.0, False)   # the highest accuracy, but it lost its original ability
    world.finish("sw-2", 0.40, 74.0, True)
    out = world.step()
    status = world.sweep["status"]
    assert status["phase"] == "Succeeded" and status["best"]["name"] == "sw-2"
    assert [r["name"] for r in status["leaderboard"]] == ["sw-2", "sw-0"]
    by_name = {t["name"]: t for t in status["trials"]}
    assert by_name["sw-1"]["state"] == "Infeasible" and by_name["sw-1"]["gateF1"] == pytest.approx(72.0)
    assert status["counts"]["infeasible"] == 1 and status["display"]["best"] == "sw-2"
    assert {"TrialSucceeded", "TrialInfeasible", "NewBest", "SweepSucceeded"} <= {e.reason for e in out.events}
    assert out.requeue_after is None


def test_no_trial_passing_the_gate_fails_the_sweep_and_says_so():
    world = World(sweep_body(parallelism=2, maxTrials=2))
    world.step()
    world.finish("sw-0", 0.5, 50.0, False)
    world.finish("sw-1", 0.6, 51.0, False)
    world.step()
    status = world.sweep["status"]
    assert status["phase"] == "Failed" and "best" not in {k for k, v in status.items() if v is not None}
    ready = [c for c in status["conditions"] if c["type"] == "Ready"][0]
    assert ready["reason"] == "NoTrialPassedGate" and "none of 2 trials passed the gate" in ready["message"]


def test_a_grid_tries_every_point_once_across_passes():
    world = World(sweep_body(algorithm="grid", parameters=[SHARE, MODULES], parallelism=2, maxTrials=4))
    seen = []
    for _ in range(6):
        world.step()
        for name in world.running():
            seen.append(json.loads(world.runs[name]["metadata"]["annotations"][names.ANNOTATION_PARAMS]))
            world.finish(name, 0.1 * len(seen), 80.0, True)
    points = {(p["data.mix[0].share"], p["lora.targetModules"]) for p in seen}
    assert len(seen) == 4 and len(points) == 4
    assert world.sweep["status"]["phase"] == "Succeeded"
    shares = sorted({world.runs[n]["spec"]["data"]["mix"][0]["share"] for n in world.runs})
    modules = sorted(tuple(world.runs[n]["spec"]["lora"]["targetModules"]) for n in world.runs)
    assert shares == [0.1, 0.3] and ("wq", "wk", "wv", "wo") in modules and ("wq", "wv") in modules


def test_a_lost_status_patch_never_makes_a_trial_twice():
    """The pass made trials, then the operator died before writing the status:
    the next pass finds them in the cluster, records them as they were made,
    and asks only for numbers not made yet."""
    world = World(sweep_body(parallelism=2, maxTrials=4))
    world.step()
    made = {n: json.loads(r["metadata"]["annotations"][names.ANNOTATION_PARAMS]) for n, r in world.runs.items()}
    world.sweep["status"] = {}
    world.step()  # World.step asserts nothing is made twice
    recorded = {t["name"]: t["params"] for t in world.sweep["status"]["trials"]}
    assert recorded == made and len(world.runs) == 2
    world.finish("sw-0", 0.4, 80.0, True)
    assert [b["metadata"]["name"] for b in world.step().create] == ["sw-2"]


def test_the_same_seed_proposes_the_same_trials():
    def proposals(seed):
        world = World(sweep_body(parallelism=1, maxTrials=4, seed=seed))
        out = []
        for i in range(4):
            world.step()
            name = f"sw-{i}"
            out.append(world.runs[name]["metadata"]["annotations"][names.ANNOTATION_PARAMS])
            world.finish(name, 0.1 + 0.1 * i, 80.0, True)
        return out
    assert proposals(7) == proposals(7) and proposals(7) != proposals(8)


def test_failed_trials_are_contained_until_max_failed_trials():
    world = World(sweep_body(parallelism=2, maxTrials=6, maxFailedTrials=1))
    world.step()
    world.fail("sw-0", "stage train failed after 3 attempts")
    out = world.step()
    assert [b["metadata"]["name"] for b in out.create] == ["sw-2"]   # one failure: the sweep goes on
    failed = [t for t in world.sweep["status"]["trials"] if t["state"] == "Failed"][0]
    assert "stage train failed after 3 attempts" in failed["message"]
    world.fail("sw-1")
    assert world.step().create == []                                 # two: no new trial
    assert world.sweep["status"]["phase"] == "Running"               # sw-2 still runs
    world.finish("sw-2", 0.5, 80.0, True)
    world.step()
    ready = [c for c in world.sweep["status"]["conditions"] if c["type"] == "Ready"][0]
    assert world.sweep["status"]["phase"] == "Failed" and ready["reason"] == "TooManyFailedTrials"


def test_a_trial_the_api_server_refused_is_recorded_failed_and_the_next_pass_recounts():
    from mathtune_operator.sweeps.sweep_pass import refuse_trials

    world = World(sweep_body(parallelism=2, maxTrials=4, maxFailedTrials=0))
    out = sweep_pass(world.sweep, [], 1000.0)
    refuse_trials(out, {"sw-1": "spec.training.lrSchedule.lrEnd must not exceed learningRate"})
    assert out.requeue_after == 0.0
    refused = {t["name"]: t for t in out.status["trials"]}["sw-1"]
    assert refused["state"] == "Failed"
    assert refused["message"] == "the API server refused the trial: spec.training.lrSchedule.lrEnd must not " \
                                 "exceed learningRate"
    assert [e.reason for e in out.events if e.reason == "TrialFailed"] == ["TrialFailed"]
    # The next pass (sw-0 exists, sw-1 never did) counts it failed, makes no
    # trial in its place (maxFailedTrials 0) and posts no second Event for it.
    world.sweep["status"] = out.status
    made = [b for b in out.create if b["metadata"]["name"] == "sw-0"]
    again = sweep_pass(world.sweep, made, 1001.0)
    assert again.create == [] and again.status["counts"]["failed"] == 1
    assert not [e for e in again.events if "sw-1" in e.message]


def test_a_value_the_template_cannot_take_fails_the_sweep_before_any_trial():
    share = dict(SHARE, values=["0.1", "1.5"])
    world = World(sweep_body(parameters=[share]))
    out = world.step()
    assert out.create == [] and world.sweep["status"]["phase"] == "Failed"
    ready = world.sweep["status"]["conditions"][0]
    assert ready["reason"] == "SpecInvalid" and "spec.parameters[0]" in ready["message"] \
        and "data.mix[0].share" in ready["message"]


def test_the_status_is_declared_in_the_crd():
    from .test_reconcile_status import _declared

    world = World(sweep_body(parallelism=2, maxTrials=2))
    world.step()
    world.finish("sw-0", 0.3, 75.0, True, epochs={"1": {"accuracy": 0.2, "f1": 76.0}, "2": {"accuracy": 0.3}})
    world.fail("sw-1")
    world.step()
    schema = yaml.safe_load(SWEEP_CRD.read_text())["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    _declared(schema["properties"]["status"], {k: v for k, v in world.sweep["status"].items() if v is not None})


@pytest.mark.parametrize("change, field", [
    ({"parallelism": 0}, "spec.parallelism"),
    ({"parameters": []}, "spec.parameters"),
    ({"parameters": [dict(EPOCHS, low=4, high=1)]}, "spec.parameters[0]"),
    ({"parameters": [dict(EPOCHS, path="training.bogus")]}, "spec.parameters[0].path"),
    ({"algorithm": "grid", "parameters": [SHARE, MODULES], "maxTrials": 3}, "spec.maxTrials"),
    ({"algorithm": "grid", "parameters": [LR]}, "spec.parameters[].step"),
    ({"parameters": [dict(SHARE, path="data.mix[2].share")]}, "spec.parameters[0]"),
    ({"parameters": [dict(EPOCHS, low=1.5)]}, "spec.parameters[0]"),
    ({"parameters": [dict(EPOCHS, step=0.5)]}, "spec.parameters[0]"),
])
def test_the_model_refuses_what_the_api_server_refuses_naming_the_field(change, field):
    """The operator parses a sweep with the same model the CRD is written from
    (tests/integration/operator/test_sweep.py sends the same to the API server)."""
    from mathtune_api import SpecInvalid
    from mathtune_api.parse import parse_sweep

    with pytest.raises(SpecInvalid) as refused:
        parse_sweep(sweep_body(**change)["spec"])
    assert refused.value.field.startswith(field), (refused.value.field, refused.value.expected)


@pytest.mark.parametrize("path", examples.SWEEPS, ids=lambda p: p.name)
def test_every_sweep_example_parses_and_every_value_fits_its_template(path):
    from mathtune_api.parse import parse_sweep

    doc = yaml.safe_load(path.read_text())
    assert len(doc["metadata"]["name"]) <= 36
    sweep = parse_sweep(doc["spec"])
    assert sweep.template.storage.pvc_name, "a sweep example shares one claim, so each data recipe is prepared once"


def test_a_trial_deleted_before_it_was_recorded_leaves_a_gap_the_next_trial_never_fills():
    """Two trials made in one pass, the operator gone before it wrote them,
    and one of them deleted by hand: the next trial asked is a new number."""
    world = World(sweep_body(parallelism=2, maxTrials=4))
    world.step()
    world.sweep["status"] = {}
    del world.runs["sw-0"]
    world.finish("sw-1", 0.4, 80.0, True)
    out = world.step()   # World.step asserts nothing is made twice
    assert [b["metadata"]["name"] for b in out.create] == ["sw-2", "sw-3"]
    assert [t["name"] for t in world.sweep["status"]["trials"]] == ["sw-1", "sw-2", "sw-3"]


def test_a_grid_point_rounded_across_a_bound_is_held_within_it():
    """Found by the agreement test: a float grid whose low has more than 12 decimals put its first point,
    rounded, below low, and every pass raised inside Optuna."""
    share = {"path": "data.mix[0].share", "type": "float", "low": 0.6501988522454135, "high": 0.65625,
             "log": True, "step": 0.01}
    world = World(sweep_body(parameters=[share], algorithm="grid", maxTrials=1))
    [trial] = world.step().create
    assert trial["spec"]["data"]["mix"][0]["share"] == 0.6501988522454135
