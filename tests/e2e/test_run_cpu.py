"""The whole product on the local cluster, the way `make demo` runs it:
the chart installed (the operator in its image, on the real node, in a
namespace enforcing Pod Security "restricted"), every stage pod in the
pipeline-cpu image on the real node (MindSpore on CPU; training on NPUs the
device plugin allocated), and a real Prometheus scraping the operator's pod
throughout.

One run serves every test in this module (it takes minutes on 2 cores).
"""
import json
import os
import threading
import time
import uuid

import pytest
import yaml
from kubernetes import client

from hack.cluster import demo, local
from tests import plugin_terminal as plugin
from tests.integration.monitoring.exporter import StaticExporter, npu_exporter_text
from tests.integration.monitoring.prom import LocalPrometheus
from tests.unit.chart import promtool
from tests.waiting import add_changed_row, create_test_namespace

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.mindspore]

# What the CPU example must show (examples/run-cpu.yaml): the training loss of
# its last epoch at most this fraction of its first steps' (measured: 4.2-4.4
# -> 0.41-0.43, about 0.1; the margin allows another machine's rounding and ordering).
LOSS_FALLS_TO = 0.4
# ... and the report's fine-tuned math accuracy (its best epoch's) on the 30
# held-out mass rows above the base model's by at least this much. Measured
# (2 shared cores, seeds 0 and 1): base 0/30, fine-tuned 17/30 and 14/30
# (0.57, 0.47); 0.2 is 6 rows, under half the gain seen.
ACCURACY_GAIN = 0.2

STAGES = ["prepare", "tokenize", "train", "merge", "evaluate", "predict", "report", "export"]
RUN_TIMEOUT = 20 * 60  # under pytest-timeout's 1800 s, so this message is the one a slow run gets
# The step of the dashboard range queries.
QUERY_STEP_SECONDS = 5


@pytest.fixture(scope="module")
def e2e_namespace(k8s_api):
    core = client.CoreV1Api(k8s_api)
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    create_test_namespace(core, name)
    yield name
    core.delete_namespace(name, propagation_policy="Background")


@pytest.fixture(scope="module")
def finished_run(kubeconfig, k8s_api, e2e_namespace, tmp_path_factory, demo_inputs):
    """Applies examples/run-cpu.yaml in a namespace of its own and waits for
    the end, with Prometheus scraping the operator (and a stand-in
    npu-exporter that reports chips for the training pod)."""
    ns = e2e_namespace
    out = tmp_path_factory.mktemp("e2e")
    core = client.CoreV1Api(k8s_api)
    doc = yaml.safe_load(demo.EXAMPLE.read_text())
    doc["metadata"]["namespace"] = ns
    name = doc["metadata"]["name"]
    run_file = out / "run.yaml"
    run_file.write_text(yaml.safe_dump(doc))

    stack = demo.Stack(kubeconfig, out, release=f"e2e-{ns[4:]}", namespace=ns, watch_namespace=ns)
    npu = StaticExporter().start()
    prom = None
    seen = {"operator_up_while_running": False, "train_pods": set(), "table": [], "stages": []}
    try:
        with stack:
            rules = promtool.render_alert_rules(out / "alerts.yaml")
            prom = LocalPrometheus(out / "prom", {"mathtune-operator": [stack.metrics_target],
                                                  "npu-exporter": [npu.target]}, [rules]).start()
            claim = demo.seed_work_volume(kubeconfig, doc, ns, made=demo_inputs)
            started = time.time()
            demo.kubectl("apply", "-f", str(run_file), kubeconfig=kubeconfig)
            # `kubectl mathtune logs -f` from the start: it must follow every stage's pod and end with the run.
            follower = plugin.spawn(kubeconfig, ns, "logs", "-f", name)
            # Every status.stage the API server stored, from a watch (no poll can miss a short stage).
            watcher = threading.Thread(target=_record_stages, args=(k8s_api, ns, name, seen), daemon=True)
            watcher.start()
            deadline = time.monotonic() + RUN_TIMEOUT
            phase = ""
            while time.monotonic() < deadline:
                phase = demo.phase_of(kubeconfig, ns, name)
                add_changed_row(seen["table"], demo.kubectl("get", "mft", "-n", ns, name, kubeconfig=kubeconfig,
                                                            check=False).stdout)
                if phase == "Running" and prom.targets_up().get("mathtune-operator") == "up":
                    seen["operator_up_while_running"] = True
                pods = core.list_namespaced_pod(ns, label_selector=f"mathtune.dev/run={name},mathtune.dev/stage=train")
                names = {p.metadata.name for p in pods.items}
                if names - seen["train_pods"]:
                    seen["train_pods"] |= names
                    npu.text = npu_exporter_text(ns, sorted(seen["train_pods"]))
                if phase in ("Succeeded", "Failed"):
                    break
                time.sleep(3)
            # "After the run": its final series scraped and the rules evaluated
            # on them; the range ends after the step that holds them.
            ended = time.time()
            if phase == "Succeeded":
                ended = prom.settled_after([f'mathtune_run_status{{namespace="{ns}",phase="Succeeded"}} == 1',
                                            f'mathtune_quality_gate_passed{{namespace="{ns}"}}'], QUERY_STEP_SECONDS)
            mft = json.loads(demo.kubectl("get", "mft", "-n", ns, name, "-o", "json", kubeconfig=kubeconfig).stdout)
            followed = plugin.finished(*follower, timeout=120)
            watcher.join(60)
            yield {"followed": followed, "name": name, "namespace": ns, "phase": phase, "mft": mft, "prom": prom, "stack": stack,
                   "started": started, "ended": ended, "seen": seen, "out": out, "core": core,
                   "volume": demo.volume_path(kubeconfig, ns, claim)}
    finally:
        if prom:
            prom.stop()
        npu.stop()
        stack.uninstall()


def test_run_succeeds_with_real_results(finished_run):
    mft = finished_run["mft"]
    status = mft.get("status") or {}
    assert finished_run["phase"] == "Succeeded", json.dumps(status, indent=2)[:4000]
    results = status["results"]
    for key in ("bestEpoch", "f1", "em", "mathAccuracy", "trainableParams", "totalParams", "lowParamRatio"):
        assert key in results, f"results lack {key}: {results}"
    # Scores that mean something (the learning itself is checked on the
    # stages' files below): the base model answers questions about passages it
    # never saw, and the status carries the report's numbers.
    report = _json(finished_run["volume"] / "runs" / finished_run["name"] / "report" / "results.json")
    assert report["baseF1"] > 0
    assert (results["f1"], results["em"]) == pytest.approx((report["f1"], report["em"]), abs=1e-3)
    assert results["mathAccuracy"] == pytest.approx(report["mathAccuracy"], abs=1e-3)
    # The replay mix is in the training set, and the leakage check found none of its rows (nor the
    # math rows) among the rows evaluate and predict scored: demo-data made them disjoint.
    mixed = results["mix"]
    assert [m["name"] for m in mixed] == ["replay"] and mixed[0]["rows"] == mixed[0]["drawn"] > 0
    assert results["rows"]["trained"] == results["rows"]["sampled"] + mixed[0]["rows"]
    assert (results["leakage"]["exact"], results["leakage"]["near"]) == (0, 0), results["leakage"]
    assert "unchecked" not in results["leakage"], results["leakage"]
    assert 0 < results["trainableParams"] < results["totalParams"]
    assert results["lowParamRatio"] == pytest.approx(results["trainableParams"] / results["totalParams"], rel=1e-3)


def _json(path):
    return json.loads(path.read_text())


def test_the_reports_numbers_follow_from_the_stages_files(finished_run):
    """What the run left on its volume, read independently of the code that
    wrote it: parameter counts from the checkpoints themselves, the gate
    applied to evaluate's scores, one loss per step trained, the plots."""
    import mindspore as ms

    run_dir = finished_run["volume"] / "runs" / finished_run["name"]
    spec = finished_run["mft"]["spec"]
    results = _json(run_dir / "report" / "results.json")
    train = _json(run_dir / "train" / "manifest.json")
    # The trained LoRA weights are the checkpoint's adapter tensors; the base
    # model is what merge folded them into (same names, LoRA gone).
    ckpt = run_dir / "train" / train["outputs"]["checkpoints"][str(results["bestEpoch"])]["0"]
    trained = ms.load_checkpoint(str(ckpt))
    # (the optimizer's moments of the same tensors are saved beside them as adam_m.* / adam_v.*)
    lora = sum(p.asnumpy().size for n, p in trained.items() if n.startswith("model.") and "mindpet_delta_lora" in n)
    merged_file = run_dir / _json(run_dir / "merge" / "manifest.json")["outputs"]["epochs"][str(results["bestEpoch"])][
        "merged"]
    merged = ms.load_checkpoint(str(merged_file))
    assert not any("lora" in n for n in merged)
    assert results["trainableParams"] == lora > 0
    assert results["totalParams"] == sum(p.asnumpy().size for p in merged.values())
    # The gate as the example states it, applied to the scores evaluate wrote.
    scores = _json(run_dir / "evaluate" / "scores.json")
    gate = spec["evaluation"]["gate"]
    passing = sorted(int(e) for e, sc in scores["epochs"].items()
                     if sc["f1"] >= gate["f1"] * scores["base"]["f1"] and sc["em"] >= gate["em"] * scores["base"]["em"])
    assert results["passedEpochs"] == passing and results["gatePassed"] == bool(passing)
    # The example keeps its original ability (its replay mix): the gate passes, and the best epoch is one
    # that passed it.
    assert results["gatePassed"] is True and results["bestEpoch"] in passing, (scores, results.get("closestToGate"))
    assert scores["count"] == spec["evaluation"]["maxSamples"]
    assert len(_json(run_dir / "train" / "loss.json")) == train["result"]["steps"] > 0
    # It learnt: the loss of the last epoch is at most LOSS_FALLS_TO of the
    # first steps', and the math accuracy on the held-out rows rose.
    curve = _json(run_dir / "train" / "loss.json")
    last_epoch = [step["loss"] for step in curve if step["epoch"] == max(s["epoch"] for s in curve)]
    first = sum(step["loss"] for step in curve[:5]) / 5
    assert sum(last_epoch) / len(last_epoch) <= LOSS_FALLS_TO * first, f"loss {first:.3f} -> {last_epoch}"
    predicted = _json(run_dir / "predict" / "scores.json")
    assert set(predicted[str(results["bestEpoch"])]["perType"]) <= set(spec["prediction"]["types"])
    best, base = predicted[str(results["bestEpoch"])], predicted["base"]
    assert best["count"] == base["count"] > 0
    assert (results["mathAccuracy"], results["baseAccuracy"]) == pytest.approx((best["accuracy"], base["accuracy"]),
                                                                               abs=1e-3)
    assert best["accuracy"] >= base["accuracy"] + ACCURACY_GAIN, (
        f"fine-tuned {best['correct']}/{best['count']} vs base {base['correct']}/{base['count']}: "
        f"{best['misses'][:3]}")
    for png in ("loss.png", "accuracy_per_type.png", "squad_gate.png", "forgetting_curve.png"):
        assert (run_dir / "report" / png).stat().st_size > 1000, png


def test_the_exported_model_answers_as_the_runs_own_predict_did(finished_run, tmp_path):
    """The export leaves the cluster readable: transformers loads export/hf
    (its own tokenizer, from the export) and, greedy, gives every held-out
    question the answer MindSpore gave in the predict stage at the exported
    epoch; status lists both formats with the digest of their SHA256SUMS."""
    import ast

    from mathtune_pipeline.artifacts import sha256_file
    from tests import readers

    run_dir = finished_run["volume"] / "runs" / finished_run["name"]
    results = finished_run["mft"]["status"]["results"]
    exports = {row["format"]: row for row in results["exports"]}
    assert set(exports) == {"peft", "hf"} and {row["epoch"] for row in exports.values()} == {results["bestEpoch"]}
    for fmt, row in exports.items():
        assert row["sha256"] == sha256_file(run_dir / row["location"] / "SHA256SUMS"), fmt
    predicted = ast.literal_eval((run_dir / "predict" / str(results["bestEpoch"]) / "predictions.txt").read_text())
    prompts, answers = [], []
    for row in predicted:
        prompt, marker, answer = row["text_generation_text"][0].partition("### Response:")
        prompts.append(prompt + marker)
        answers.append(answer)
    assert len(prompts) == 30 and all(answers)
    spec = finished_run["mft"]["spec"]
    got = readers.answers(run_dir / "export" / "hf", prompts, spec["prediction"]["maxNewTokens"], tmp_path)
    differ = [(p[-60:], a, g) for p, a, g in zip(prompts, answers, got) if a != g]
    assert not differ, f"{len(differ)} of {len(prompts)} answers differ: {differ[:3]}"


def test_kubectl_mathtune_logs_f_followed_every_stage_and_ended_with_the_run(finished_run):
    """Started right after `kubectl apply`, `kubectl mathtune logs -f` printed
    each stage's pod in pipeline order (training's with its rank), moving on
    to the next stage's pod by itself, and exited 0 when the run ended."""
    code, screen = finished_run["followed"]
    assert code == 0, screen[-3000:]
    lines = screen.splitlines()
    firsts = []
    for line in lines:
        tag = line.split(" ", 1)[0]
        stage = tag.strip("[]").split("/")[0]
        if tag.startswith("[") and stage in STAGES and (not firsts or firsts[-1] != stage):
            firsts.append(stage)
    assert firsts == STAGES, firsts
    assert any(line.startswith("[train/rank 0] ") for line in lines)
    assert any(line.startswith("[export] export: hf: ") for line in lines), "the export stage's own lines"


def test_kubectl_mathtune_reads_the_finished_run(finished_run, kubeconfig, tmp_path):
    """status, results, explain and artifacts --download on the real run: the
    download goes through a restricted pod that mounts the work volume, and
    gives the files the run wrote."""
    ns, name = finished_run["namespace"], finished_run["name"]
    code, screen = plugin.finished(*plugin.spawn(kubeconfig, ns, "results", name))
    results = finished_run["mft"]["status"]["results"]
    assert code == 0 and f"best epoch {results['bestEpoch']}, original-ability gate passed" in screen, screen
    assert f"{100 * results['mathAccuracy']:.1f}%" in screen
    code, screen = plugin.finished(*plugin.spawn(kubeconfig, ns, "explain", name))
    assert code == 0 and f"{name} succeeded, and kept its original ability (gate passed)" in screen, screen
    target = tmp_path / "artifacts"
    code, screen = plugin.finished(*plugin.spawn(kubeconfig, ns, "artifacts", name, "--download", str(target)),
                                   timeout=300)
    assert code == 0, screen[-3000:]
    run_dir = finished_run["volume"] / "runs" / name
    for relative in ("export/hf/config.json", "export/peft/adapter_model.safetensors", "report/results.json"):
        assert (target / relative).read_bytes() == (run_dir / relative).read_bytes(), relative
    # compare --flips reads both runs' predictions through the same reader: a run against itself flips nothing.
    code, screen = plugin.finished(*plugin.spawn(kubeconfig, ns, "compare", name, name, "--flips", "-o", "json"),
                                   timeout=300)
    compared = json.loads(screen[screen.index("{"):])
    assert code == 0 and compared["flips"] == [] and compared["recipe"] == [], screen[-2000:]
    core = finished_run["core"]
    assert not [p for p in core.list_namespaced_pod(ns).items if "-fetch-" in p.metadata.name
                and p.metadata.deletion_timestamp is None], "the volume reader's pod was left behind"


def _record_stages(k8s_api, ns, name, seen):
    """status.stage after each change of the run, until it ends. One watch from the start; should the
    API server end it or find its version compacted away (410), a new one continues from the last seen."""
    from kubernetes import watch

    custom = client.CustomObjectsApi(k8s_api)
    version = None
    while True:
        try:
            for event in watch.Watch().stream(custom.list_namespaced_custom_object, "mathtune.dev", "v1alpha1", ns,
                                              "mathfinetunes", field_selector=f"metadata.name={name}",
                                              resource_version=version, timeout_seconds=1800):
                status = event["object"].get("status") or {}
                version = event["object"]["metadata"]["resourceVersion"]
                if status.get("stage") and (not seen["stages"] or seen["stages"][-1] != status["stage"]):
                    seen["stages"].append(status["stage"])
                if status.get("phase") in ("Succeeded", "Failed"):
                    return
        except client.exceptions.ApiException as exc:
            if exc.status != 410:
                raise
            version = None


def test_the_run_went_through_every_stage_in_order(finished_run):
    """status.stage as a watch saw it: every stage of the plan, each once, in pipeline order, then Done."""
    assert finished_run["seen"]["stages"] == STAGES + ["Done"]


def test_kubectl_get_mft_showed_the_run_progress(finished_run):
    """The STAGE column, polled every 3 s: short stages may pass unseen, but
    what was seen came in pipeline order, training (a minute or more) was
    seen, and the last row says Done."""
    rows = finished_run["seen"]["table"]
    shown = [row.split()[1] for row in rows]
    order = [STAGES.index(stage) for stage in shown if stage in STAGES]
    assert order == sorted(order), shown
    assert "train" in shown, rows
    assert shown[-1] == "Done", rows[-1]


def test_every_stage_really_ran_on_the_real_node(finished_run):
    """Each stage pod ran in the pipeline image under the kubelet, as UID
    10001 (the files it wrote are 10001's), and left its manifest on the
    provisioned work volume."""
    ns, name, core = finished_run["namespace"], finished_run["name"], finished_run["core"]
    run_dir = finished_run["volume"] / "runs" / name
    for stage in STAGES:
        manifest = run_dir / stage / "manifest.json"
        assert manifest.is_file(), f"{stage} left no manifest in {run_dir}"
        assert os.stat(manifest).st_uid == 10001, f"{stage} did not run as UID 10001"
    pods = core.list_namespaced_pod(ns, label_selector=f"mathtune.dev/run={name}").items
    assert {p.metadata.labels["mathtune.dev/stage"] for p in pods} == set(STAGES)
    for pod in pods:
        assert pod.spec.node_name == local.REAL_NODE, pod.metadata.name
        status = pod.status.container_statuses[0]
        assert status.image == "docker.io/mathtune/pipeline-cpu:0.1.0" and status.image_id.startswith("sha256:")


def test_training_ran_on_the_npus_the_device_plugin_allocated(finished_run):
    """`kubectl logs job/<run>-train` is the real training log, served by the
    kubelet: msrun's progress, and one worker per allocated NPU."""
    ns, name = finished_run["namespace"], finished_run["name"]
    log = demo.kubectl("logs", "-n", ns, f"job/{name}-train").stdout
    assert "mathtune-progress" in log and "msrun" in log
    line = next(ln for ln in log.splitlines() if "workers on the NPUs allocated here" in ln)
    ids = line.split("ASCEND_VISIBLE_DEVICES=")[1].rstrip(")").split(",")
    assert line.startswith("train: 2 workers") and len(set(ids)) == 2, line


def test_prometheus_scraped_the_operator_during_the_run(finished_run):
    assert finished_run["seen"]["operator_up_while_running"]
    prom = finished_run["prom"]
    ns, name = finished_run["namespace"], finished_run["name"]
    series = prom.query(f'mathtune_run_status{{namespace="{ns}", run="{name}", phase="Succeeded"}}')
    assert [s["value"][1] for s in series] == ["1"]


def test_every_dashboard_panel_returns_data(finished_run):
    """What Grafana would ask for over the run's time range, asked of the
    Prometheus that scraped the run."""
    prom = finished_run["prom"]
    start, end = finished_run["started"], finished_run["ended"]
    span = f"{int(end - start) + 60}s"
    empty = []
    for title, expr in promtool.dashboard_exprs(grafana_range=span):
        data = prom.api("query_range", query=expr, start=f"{start:.3f}", end=f"{end:.3f}", step=f"{QUERY_STEP_SECONDS}s")
        if not data["result"]:
            empty.append((title, expr))
    assert not empty, "panels without data:\n" + "\n".join(f"  {t}: {e}" for t, e in empty)


def test_no_alert_during_a_run_that_passed_its_gate(finished_run):
    """No alert is raised during a run that succeeded and kept its original ability, not even
    pending (the stuck-stage and loss alerts wait longer than the run before firing; the
    quality-gate alert fires only when the gate fails, which the example's mix prevents)."""
    prom = finished_run["prom"]
    assert finished_run["mft"]["status"]["results"].get("gatePassed") is True
    seen = prom.alerts_during(finished_run["started"], finished_run["ended"])
    assert seen == {}, seen
