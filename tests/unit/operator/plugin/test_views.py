"""The plugin's pure parts: what it prints from a run's resource, how it compares runs,
explains them, and the pod it reads a volume through."""
import ast
import json
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

from rich.console import Console

from mathtune_operator.plugin import compare, errors, explain, render, volume, watch
from tests.specs import whole

PREDICT = Path(__file__).resolve().parents[3] / "fixtures" / "predict-epochs"


def _text(renderable) -> str:
    console = Console(width=160, record=True, file=open("/dev/null", "w"))
    console.print(renderable)
    return console.export_text()


def _run(phase="Succeeded", stage="Done", results=None, spec=None, **status):
    return {"metadata": {"name": "r"}, "spec": spec or {},
            "status": {"phase": phase, "stage": stage, "results": results or {}, **status}}


def _epoch(epoch):
    """(the predict stage's scores, its outputs in row order) of the CPU example's run at an epoch."""
    scores = json.loads((PREDICT / "scores.json").read_text())[epoch]
    outputs = [row["text_generation_text"][0] for row in ast.literal_eval((PREDICT / f"{epoch}.txt").read_text())]
    return scores, outputs


def test_flips_between_two_epochs_of_a_real_run():
    """Rows read by hand in the CPU example's predictions: 1 x 8 was 5 at epoch 10 and 8 at epoch 20
    (fixed), 6 x 5 was 30 and then 35 (broke), 1 x 9 was 54 and then 9 (fixed)."""
    first, second = (compare.verdicts(*_epoch(e)) for e in ("10", "20"))
    flipped = {f["index"]: f for f in compare.flips(first, second)}
    assert flipped[1]["change"] == "fixed" and flipped[1]["first"].startswith("1 * 8 = 5")
    assert flipped[1]["second"].startswith("1 * 8 = 8") and "体积为 8 立方厘米" in flipped[1]["question"]
    assert flipped[3]["change"] == "broke" and flipped[3]["first"].startswith("6 * 5 = 30")
    assert flipped[3]["second"].startswith("6 * 5 = 35")
    assert flipped[11]["change"] == "fixed" and flipped[11]["first"].startswith("1 * 9 = 54")
    assert sum(f["change"] == "fixed" for f in flipped.values()) - sum(f["change"] == "broke"
                                                                       for f in flipped.values()) == 15 - 11
    scores, outputs = _epoch("10")
    assert compare.verdicts({**scores, "misses": scores["misses"][:3]}, outputs) is None  # cut short: unknown


def test_recipe_differences_leave_out_where_a_run_ran():
    one = {"spec": {"lora": {"rank": 8}, "training": {"epochs": 3}, "storage": {"size": "1Gi"}}}
    two = {"spec": {"lora": {"rank": 16}, "training": {"epochs": 3}, "storage": {"size": "9Gi"}}}
    assert compare.recipe_differences([one, two]) == [("lora.rank", [8, 16])]


def test_metric_rows_mark_what_differs_per_type_too():
    rows = compare.metric_rows([_run(results={"mathAccuracy": 0.4, "f1": 70.0, "perType": {"add": 0.5}}),
                                _run(results={"mathAccuracy": 0.5, "f1": 70.0, "perType": {"add": 0.5}})])
    marked = {label: differ for label, _, differ in rows}
    assert marked["math accuracy (careful reader)"] and not marked["SQuAD F1"] and not marked["accuracy: add"]


def test_results_view_shows_both_rules_per_type_and_exports():
    text = _text(render.results_view(_run(results={
        "bestEpoch": 20, "gatePassed": True, "mathAccuracy": 0.5, "mathAccuracyContestRule": 0.5667,
        "baseAccuracy": 0.0, "f1": 76.67, "baseF1": 78.33, "perType": {"mass": 0.5},
        "perTypeContestRule": {"mass": 0.5667},
        "exports": [{"format": "hf", "epoch": 20, "location": "export/hf", "bytes": 3211186, "sha256": "ab" * 32}]})))
    assert "r: best epoch 20, original-ability gate passed" in text
    assert "50.0%" in text and "56.7%" in text and "76.67" in text and "78.33" in text
    assert "export/hf" in text and "3.2 MB" in text


def test_outcome_exit_codes():
    assert watch.outcome(_run(results={"gatePassed": True})) == errors.SUCCEEDED
    assert watch.outcome(_run(results={"gatePassed": False})) == errors.GATE_FAILED
    assert watch.outcome(_run(phase="Failed", stage="train")) == errors.RUN_FAILED
    assert watch.outcome(_run(phase="Running", stage="train")) is None


def test_explain_says_why_a_stage_waits():
    run = _run(phase="Running", stage="train", conditions=[
        {"type": "Ready", "status": "False", "reason": "Unschedulable",
         "message": "0/3 nodes are available: 3 Insufficient huawei.com/Ascend910"}],
        stages=[{"name": "train", "state": "Pending"}])
    pod = SimpleNamespace(metadata=SimpleNamespace(name="r-train-0-x", labels={"mathtune.dev/stage": "train"}),
                          status=SimpleNamespace(phase="Pending", conditions=[], container_statuses=[
                              SimpleNamespace(state=SimpleNamespace(waiting=SimpleNamespace(
                                  reason="ImagePullBackOff", message="pull access denied")))]))
    said = explain.explain(run, [pod], "Pending")
    assert said[0] == "stage train waits: Unschedulable: 0/3 nodes are available: 3 Insufficient huawei.com/Ascend910"
    assert "its work volume's claim is Pending" in said[1]
    assert said[2] == "pod r-train-0-x: its image cannot be pulled (ImagePullBackOff: pull access denied)"


def test_the_volume_reader_is_restricted_and_read_only():
    run = {"metadata": {"name": "r"}, "spec": whole({"storage": {"dataPath": "/data"},
                                                     "images": {"pipeline": "img:1", "pullPolicy": "Never"},
                                                     "scheduling": {"nodeSelector": {"a": "b"}}})}
    pod = volume.helper_pod(run, "r-fetch-1")
    container = pod["spec"]["containers"][0]
    assert pod["spec"]["securityContext"]["runAsNonRoot"] and container["securityContext"]["capabilities"] == \
        {"drop": ["ALL"]}
    assert container["volumeMounts"] == [{"name": "work", "mountPath": "/data", "readOnly": True}]
    assert pod["spec"]["volumes"][0]["persistentVolumeClaim"] == {"claimName": "r-work", "readOnly": True}
    assert pod["spec"]["nodeSelector"] == {"a": "b"} and container["image"] == "img:1"


def test_durations_read_as_a_person_reads_them():
    now = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    assert render.duration("2026-01-01T11:58:55Z", None, now) == "1m05s"
    assert render.duration("2026-01-01T09:30:00Z", "2026-01-01T11:45:00Z", now) == "2h15m"


def test_log_lines_name_the_stage_and_the_training_rank():
    def pod(stage, index=None):
        return SimpleNamespace(metadata=SimpleNamespace(
            labels={"mathtune.dev/stage": stage},
            annotations={} if index is None else {"batch.kubernetes.io/job-completion-index": index}))

    from mathtune_operator.plugin import follow

    assert follow.prefix(pod("prepare")) == "[prepare]"
    assert follow.prefix(pod("train")) == "[train/rank 0]"          # one node: its pod is rank 0
    assert follow.prefix(pod("train", "1")) == "[train/rank 1]"     # multi-node: the Indexed Job's index
    pods = [pod("train", "0"), pod("train", "1"), pod("merge")]
    assert follow.chosen(pods, "train", 1) == [pods[1]] and follow.chosen(pods, None, 1) == [pods[1], pods[2]]
