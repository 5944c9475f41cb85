"""MathFinetuneSweep against the real API server and a real operator process:
the API server refuses a malformed sweep naming the field; a sweep makes its
trials as MathFinetunes it owns (their stage pods played on kwok's nodes with
the results real stages report), records each, keeps the gate as a
constraint, and a killed operator makes no trial twice."""
import copy

import pytest
from kubernetes.client.exceptions import ApiException

from . import helpers as h

pytestmark = pytest.mark.integration

STAGES = ["prepare", "tokenize", "train", "merge", "evaluate", "predict", "report"]
RANK = {"path": "lora.rank", "type": "int", "low": 4, "high": 32}


def sweep_doc(name: str, **spec) -> dict:
    template = h.run_doc("run-cpu.yaml", "unused")["spec"]
    template.pop("export")  # seven stages to play per trial
    return {"apiVersion": f"{h.GROUP}/{h.VERSION}", "kind": "MathFinetuneSweep", "metadata": {"name": name},
            "spec": {"template": template, "parameters": [RANK], **spec}}


def create_sweep(custom, namespace, doc):
    return custom.create_namespaced_custom_object(h.GROUP, h.VERSION, namespace, "mathfinetunesweeps", doc)


def get_sweep(custom, namespace, name):
    return custom.get_namespaced_custom_object(h.GROUP, h.VERSION, namespace, "mathfinetunesweeps", name)


def trials(custom, namespace, sweep):
    items = custom.list_namespaced_custom_object(h.GROUP, h.VERSION, namespace, h.PLURAL,
                                                 label_selector=f"mathtune.dev/sweep={sweep}")["items"]
    return sorted(i["metadata"]["name"] for i in items)


@pytest.mark.parametrize("change, field, words", [
    ({"parallelism": 0}, "spec.parallelism", "should be greater than or equal to 1"),
    ({"parameters": []}, "spec.parameters", "should have at least 1 items"),
    ({"parameters": [dict(RANK, low=32, high=4)]}, "spec.parameters[0].low", "must be below"),
    ({"parameters": [dict(RANK, path="training.bogus")]}, "spec.parameters[0].path", "must name a field"),
    ({"parameters": [dict(RANK, path="storage.size")]}, "spec.parameters[0].path", "must name a field"),
    ({"algorithm": "grid", "maxTrials": 4}, "spec.maxTrials", "the grid has more points than maxTrials"),
    ({"parameters": [{"path": "lora.targetModules", "type": "categorical", "values": []}]},
     "spec.parameters[0].values", "should have at least 1 items"),
    ({"parameters": [dict(RANK, low=4.5)]}, "spec.parameters[0].low", "are whole numbers"),
    ({"parameters": [dict(RANK, step=0.5)]}, "spec.parameters[0].step", "is a whole number, at least 1"),
])
def test_the_api_server_refuses_a_malformed_sweep_naming_the_field(namespace, apis, crd, change, field, words):
    doc = sweep_doc("bad", **change)
    with pytest.raises(ApiException) as refused:
        create_sweep(apis["custom"], namespace, doc)
    assert refused.value.status == 422, refused.value.body
    assert field in refused.value.body and words in refused.value.body, refused.value.body


def test_a_grid_the_size_of_max_trials_and_a_partial_grid_are_accepted(namespace, apis, crd):
    small = dict(RANK, step=14)   # 4, 18, 32
    create_sweep(apis["custom"], namespace, sweep_doc("exact", algorithm="grid", maxTrials=3, parameters=[small]))
    create_sweep(apis["custom"], namespace, sweep_doc("partial", algorithm="grid", maxTrials=2, partialGrid=True,
                                                      parameters=[small]))


def play(apis, namespace, run, accuracy, passed, stages=STAGES):
    for stage in stages:
        extra = {"mathAccuracy": accuracy, "gatePassed": passed} if stage == "report" else {}
        h.finish_stage(apis["core"], namespace, f"{run}-{stage}", 0, h.result(stage, **extra))


def test_a_sweep_runs_its_trials_to_the_best_that_passed_the_gate_across_an_operator_kill(
        namespace, apis, operator, volumes):
    custom = apis["custom"]
    for number in range(3):
        h.bind_work_volume(apis["core"], namespace, f"sw-{number}-work", volumes)
    create_sweep(custom, namespace, sweep_doc("sw", maxTrials=3, parallelism=2, algorithm="random", seed=3))
    h.wait(lambda: trials(custom, namespace, "sw") == ["sw-0", "sw-1"], 60, "the first two trials")
    sweep = h.wait(lambda: (lambda s: s if len((s.get("status") or {}).get("trials") or []) == 2 else None)(
        get_sweep(custom, namespace, "sw")), 60, "both trials recorded")
    assert sweep["status"]["phase"] == "Running" and sweep["status"]["counts"]["running"] == 2
    run = custom.get_namespaced_custom_object(h.GROUP, h.VERSION, namespace, h.PLURAL, "sw-0")
    assert run["metadata"]["ownerReferences"][0]["kind"] == "MathFinetuneSweep"
    recorded = {t["name"]: t["params"]["lora.rank"] for t in sweep["status"]["trials"]}
    assert int(recorded["sw-0"]) == run["spec"]["lora"]["rank"]

    play(apis, namespace, "sw-0", 0.40, True)
    operator.kill()                               # mid-sweep: one trial done, one running
    play(apis, namespace, "sw-1", 0.90, False, STAGES[:1])   # its stage ends while no operator runs
    operator.start()
    play(apis, namespace, "sw-1", 0.90, False, STAGES[1:])   # it missed the gate
    h.wait(lambda: trials(custom, namespace, "sw") == ["sw-0", "sw-1", "sw-2"], 90, "the third trial")
    play(apis, namespace, "sw-2", 0.55, True)

    done = h.wait(lambda: (lambda s: s if (s.get("status") or {}).get("phase") == "Succeeded" else None)(
        get_sweep(custom, namespace, "sw")), 90, "the sweep to succeed")
    status = done["status"]
    assert trials(custom, namespace, "sw") == ["sw-0", "sw-1", "sw-2"]        # no trial made twice
    assert [t["name"] for t in status["trials"]] == ["sw-0", "sw-1", "sw-2"]
    assert {t["name"]: t["state"] for t in status["trials"]} == {
        "sw-0": "Succeeded", "sw-1": "Infeasible", "sw-2": "Succeeded"}
    assert status["best"]["name"] == "sw-2" and status["best"]["objective"] == pytest.approx(0.55)
    assert [r["name"] for r in status["leaderboard"]] == ["sw-2", "sw-0"]
    assert status["counts"] == {"running": 0, "succeeded": 2, "infeasible": 1, "failed": 0, "pruned": 0, "total": 3}
    reasons = set(h.events_of(apis["core"], namespace, "sw"))
    assert {"TrialCreated", "TrialSucceeded", "TrialInfeasible", "NewBest", "SweepSucceeded"} <= reasons, reasons
    metrics = operator.metrics()
    assert f'mathtune_sweep_best_objective{{namespace="{namespace}",sweep="sw"}} 0.55' in metrics


def test_deleting_a_sweep_deletes_its_trials(namespace, apis, operator, volumes):
    custom = apis["custom"]
    for number in range(2):
        h.bind_work_volume(apis["core"], namespace, f"gone-{number}-work", volumes)
    create_sweep(custom, namespace, copy.deepcopy(sweep_doc("gone", maxTrials=2, parallelism=2)))
    h.wait(lambda: trials(custom, namespace, "gone") == ["gone-0", "gone-1"], 60, "the trials")
    custom.delete_namespaced_custom_object(h.GROUP, h.VERSION, namespace, "mathfinetunesweeps", "gone",
                                           propagation_policy="Foreground")
    h.wait(lambda: trials(custom, namespace, "gone") == [], 90, "the trials to go with their sweep")


def test_a_trial_the_api_server_refuses_is_a_failed_trial_in_its_words(namespace, apis, operator):
    """lrEnd above the template's learning rate passes the sweep's checks (the
    parameter alone is fine) but not the MathFinetune's CEL rule that reads
    both: the trial is recorded failed with the API server's message, and
    with maxFailedTrials 0 the sweep stops there."""
    custom = apis["custom"]
    lr_end = {"path": "training.lrSchedule.lrEnd", "type": "categorical", "values": ["0.5"]}
    create_sweep(custom, namespace, sweep_doc("refused", parameters=[lr_end], maxTrials=2, parallelism=1,
                                                maxFailedTrials=0))
    sweep = h.wait(lambda: (s := get_sweep(custom, namespace, "refused")).get("status", {}).get("phase") == "Failed"
                   and s, 60, "the sweep Failed")
    [record] = sweep["status"]["trials"]
    assert record["state"] == "Failed" and record["message"].startswith("the API server refused the trial: ")
    assert "lrEnd" in record["message"] and "learningRate" in record["message"], record["message"]
    assert trials(custom, namespace, "refused") == []
    assert h.condition(sweep, "Ready")["reason"] == "TooManyFailedTrials"
    h.wait(lambda: "TrialFailed" in h.events_of(apis["core"], namespace, "refused"), 30, "the TrialFailed Event")


def test_early_stopping_suspends_a_trial_whose_loss_is_above_the_median(namespace, apis, operator, volumes):
    """Two trials finish with epoch-1 training losses 1.0 and 1.2 (median 1.1); the third reports 1.5 when its
    train stage ends. The sweep suspends its run, which stops before merge, records it Pruned, and ends."""
    custom = apis["custom"]
    for number in range(3):
        h.bind_work_volume(apis["core"], namespace, f"es-{number}-work", volumes)
    create_sweep(custom, namespace, sweep_doc("es", maxTrials=3, parallelism=2, algorithm="random", seed=5,
                                              earlyStopping={"minTrials": 2, "minEpochs": 1}))
    h.wait(lambda: trials(custom, namespace, "es") == ["es-0", "es-1"], 60, "the first two trials")
    for run, loss, accuracy in (("es-0", 1.0, 0.4), ("es-1", 1.2, 0.5)):
        play(apis, namespace, run, accuracy, True, STAGES[:2])
        h.finish_stage(apis["core"], namespace, f"{run}-train", 0, h.result("train", epochLoss={"1": loss}))
        play(apis, namespace, run, accuracy, True, STAGES[3:])
    h.wait(lambda: trials(custom, namespace, "es") == ["es-0", "es-1", "es-2"], 90, "the third trial")
    play(apis, namespace, "es-2", 0.9, True, STAGES[:2])
    h.finish_stage(apis["core"], namespace, "es-2-train", 0, h.result("train", epochLoss={"1": 1.5}))

    done = h.wait(lambda: (lambda s: s if (s.get("status") or {}).get("phase") == "Succeeded" else None)(
        get_sweep(custom, namespace, "es")), 90, "the sweep to end")
    status = done["status"]
    pruned = {t["name"]: t for t in status["trials"]}["es-2"]
    assert pruned["state"] == "Pruned" and pruned["epochLoss"] == {"1": 1.5}
    assert pruned["message"] == ("pruned after epoch 1: its training loss reached 1.5, above the median 1.1 of 2 "
                                 "finished trials of the same data recipe at that epoch")
    assert status["counts"] == {"running": 0, "succeeded": 2, "infeasible": 0, "failed": 0, "pruned": 1, "total": 3}
    assert status["best"]["name"] == "es-1"
    run = custom.get_namespaced_custom_object(h.GROUP, h.VERSION, namespace, h.PLURAL, "es-2")
    assert run["spec"]["runPolicy"]["suspend"] is True
    assert run["metadata"]["annotations"]["mathtune.dev/pruned"] == pruned["message"]
    h.wait(lambda: (custom.get_namespaced_custom_object(h.GROUP, h.VERSION, namespace, h.PLURAL, "es-2")
                    .get("status") or {}).get("phase") == "Suspended", 60, "the pruned trial's run Suspended")
    h.wait(lambda: "TrialPruned" in h.events_of(apis["core"], namespace, "es"), 30, "the TrialPruned Event")
    assert f'mathtune_sweep_trials{{namespace="{namespace}",state="Pruned",sweep="es"}} 1.0' in operator.metrics()
