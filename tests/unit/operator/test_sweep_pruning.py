"""Early stopping (sweeps/pruning.py and the pass around it): Optuna's
MedianPruner, the real one, on the trials' per-epoch training loss, with
medians worked out by hand below."""
import copy

from mathtune_api.parse import parse_sweep
from mathtune_operator import names
from mathtune_operator.sweeps.pruning import prune_reason

from .test_reconcile_status import _declared
from .test_sweeps import EPOCHS, LR, SHARE, SWEEP_CRD, World, sweep_body

EARLY = {"minTrials": 2, "minEpochs": 1}


def record(number, state, losses, share="0.1"):
    return {"number": number, "name": f"sw-{number}", "state": state, "params": {SHARE["path"]: share},
            "epochLoss": {str(e): v for e, v in losses.items()}}


def spec(**early):
    return parse_sweep(sweep_body(parameters=[LR, SHARE], earlyStopping={**EARLY, **early})["spec"])


# Finished trials' losses at epoch 2: 0.8, 1.0, 1.4, whose median is 1.0.
FINISHED = [record(0, "Succeeded", {1: 1.5, 2: 0.8}), record(1, "Infeasible", {1: 1.6, 2: 1.0}),
            record(2, "Succeeded", {1: 1.7, 2: 1.4})]


def test_a_trial_above_the_median_at_its_epoch_is_pruned_and_one_below_is_not():
    slow = record(3, "Running", {1: 1.6, 2: 1.1})
    fast = record(4, "Running", {1: 1.6, 2: 0.9})
    why = prune_reason(spec(), slow, FINISHED + [slow, fast])
    assert why == ("pruned after epoch 2: its training loss reached 1.1, above the median 1 of 3 finished trials "
                   "of the same data recipe at that epoch")
    assert prune_reason(spec(), fast, FINISHED + [slow, fast]) is None


def test_the_best_epoch_so_far_is_what_is_compared():
    """Optuna's rule: the trial's best loss over its epochs against the median at its newest epoch."""
    dipped = record(3, "Running", {1: 0.95, 2: 1.2})
    assert prune_reason(spec(), dipped, FINISHED + [dipped]) is None


def test_no_pruning_before_min_trials_finished_or_before_min_epochs():
    slow = record(3, "Running", {1: 1.9})
    assert prune_reason(spec(minTrials=4), slow, FINISHED + [slow]) is None
    assert prune_reason(spec(minEpochs=2), slow, FINISHED + [slow]) is None
    assert prune_reason(spec(minEpochs=1), slow, FINISHED + [slow]) is not None  # median at epoch 1: 1.6


def test_only_trials_of_the_same_data_recipe_are_compared():
    """Another mix share is other data: its losses are no yardstick."""
    slow = record(3, "Running", {1: 1.9, 2: 1.5}, share="0.3")
    assert prune_reason(spec(), slow, FINISHED + [slow]) is None
    peers = [record(5 + n, "Succeeded", {1: 2.0, 2: 1.6 + n / 10}, share="0.3") for n in range(2)]
    assert prune_reason(spec(), slow, FINISHED + peers + [slow]) is None  # median of its peers: 1.65
    assert prune_reason(spec(), record(3, "Running", {1: 2.1, 2: 1.7}, share="0.3"), FINISHED + peers) is not None


def test_failed_and_pruned_trials_are_not_the_yardstick():
    slow = record(3, "Running", {1: 1.6, 2: 1.1})
    others = [record(0, "Failed", {1: 1.5, 2: 0.8}), record(1, "Pruned", {1: 1.6, 2: 1.0}), FINISHED[2]]
    assert prune_reason(spec(), slow, others + [slow]) is None  # one finished trial: fewer than minTrials


def test_without_early_stopping_nothing_is_pruned():
    plain = parse_sweep(sweep_body(parameters=[LR, SHARE])["spec"])
    slow = record(3, "Running", {1: 9.0, 2: 9.0})
    assert prune_reason(plain, slow, FINISHED + [slow]) is None


def _trained(world, name, losses):
    world.runs[name]["status"] = {"phase": "Running", "progress": {"stage": "train", "epochLoss": {
        str(e): v for e, v in losses.items()}}}


def _finish(world, name, losses, accuracy):
    world.finish(name, accuracy, 80.0, True)
    world.runs[name]["status"]["progress"] = {"epochLoss": {str(e): v for e, v in losses.items()}}


def test_the_pass_suspends_a_pruned_trial_records_it_and_starts_the_next():
    world = World(sweep_body(parameters=[LR, EPOCHS], parallelism=2, maxTrials=5, earlyStopping=EARLY))
    world.step()
    _finish(world, "sw-0", {1: 1.0, 2: 0.7}, 0.4)
    _finish(world, "sw-1", {1: 1.2, 2: 0.9}, 0.5)
    world.step()  # sw-2 and sw-3
    _trained(world, "sw-2", {1: 1.5})  # above the median 1.1 at epoch 1
    _trained(world, "sw-3", {1: 1.05})
    out = world.step()
    assert list(out.prune) == ["sw-2"] and out.prune["sw-2"].startswith("pruned after epoch 1")
    assert [e.reason for e in out.events] == ["TrialPruned", "TrialCreated"]
    assert [b["metadata"]["name"] for b in out.create] == ["sw-4"]
    assert world.runs["sw-2"]["spec"]["runPolicy"]["suspend"] is True
    status = world.sweep["status"]
    trial = {t["name"]: t for t in status["trials"]}["sw-2"]
    assert trial["state"] == "Pruned" and trial["message"] == out.prune["sw-2"]
    assert trial["epochLoss"] == {"1": 1.5}
    assert status["counts"]["pruned"] == 1 and status["counts"]["running"] == 2
    assert status["display"]["trials"] == "3/5"  # pruned counts as done
    world.step()
    assert world.sweep["status"]["counts"]["pruned"] == 1, "a pruned trial stays pruned"
    _declared(__import__("yaml").safe_load(SWEEP_CRD.read_text())["spec"]["versions"][0]["schema"][
        "openAPIV3Schema"]["properties"]["status"], {k: v for k, v in status.items() if v is not None})


def test_a_run_suspended_for_pruning_is_pruned_even_if_the_status_was_lost():
    """The controller suspends and annotates the run before it writes the status: a pass that finds the
    annotation records the trial Pruned, in the annotation's words, and prunes nothing again."""
    world = World(sweep_body(parameters=[LR, EPOCHS], parallelism=2, maxTrials=2, earlyStopping=EARLY))
    world.step()
    before = copy.deepcopy(world.sweep["status"])
    world.runs["sw-1"]["metadata"]["annotations"][names.ANNOTATION_PRUNED] = "pruned after epoch 1: by hand"
    world.runs["sw-1"]["status"] = {"phase": "Suspended"}
    world.sweep["status"] = before
    out = world.step()
    assert out.prune == {}
    trial = {t["name"]: t for t in world.sweep["status"]["trials"]}["sw-1"]
    assert trial["state"] == "Pruned" and trial["message"] == "pruned after epoch 1: by hand"
    world.finish("sw-0", 0.4, 80.0, True)
    world.step()
    assert world.sweep["status"]["phase"] == "Succeeded" and world.sweep["status"]["counts"]["pruned"] == 1
