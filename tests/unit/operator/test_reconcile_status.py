"""A reconcile pass against an in-memory stand-in of the API server's Jobs
and pods (the real API server is in tests/integration/operator): the
decisions, the status shape, conditions, events and metrics."""
import json
import subprocess
import shutil

import pytest
from kubernetes.client.exceptions import ApiException
from prometheus_client import CollectorRegistry

from mathtune_operator import progress, reconcile
from mathtune_operator.errors import ForeignObject
from mathtune_operator import status as st
from mathtune_operator.metrics import Metrics

from .conftest import schema

RESULTS = {
    "prepare": {"rows": {"read": 200, "bad": 0, "deduped": 200, "sampled": 200, "other": 0,
                         "classified": {"add": 120, "mean": 80}}},
    "tokenize": {"rows": 200, "seqLength": 128, "truncated": 0, "paddingShare": 0.4, "shards": 1},
    "train": {"epochs": 2, "steps": 50, "finalLoss": 1.25, "epochLoss": {"2": 1.3}, "trainableParams": 4096,
              "totalParams": 100000, "checkpoints": [1, 2]},
    "merge": {"epochs": [1, 2], "adapter": "/data/runs/r/merge/adapter.ckpt", "merged": "/data/runs/r/merge/m"},
    "evaluate": {"base": {"f1": 10.0, "em": 5.0}, "epochs": {"1": {"f1": 9.5, "em": 4.8}, "2": {"f1": 9.9, "em": 5}}},
    "predict": {"epochs": {"1": {"accuracy": 0.1, "perType": {"add": 0.1}}, "2": {"accuracy": 0.2,
                                                                               "perType": {"add": 0.3}}}},
    "report": {"bestEpoch": 2, "f1": 9.9, "em": 5.0, "mathAccuracy": 0.2, "perType": {"add": 0.3, "mean": 0.1},
               "gatePassed": True, "trainableParams": 4096, "totalParams": 100000, "lowParamRatio": 0.04096,
               "artifacts": {"report": "/data/runs/r/report/report.json"}},
    "export": {"epoch": 2, "formats": ["peft"], "artifacts": [
        {"format": "peft", "location": "export/peft", "bytes": 1024, "files": 3, "sha256": "ab" * 32}]},
}


class Fake:
    """Jobs and pods kept in dicts; `finish` plays the Job controller."""

    def __init__(self):
        self.objects, self.jobs, self.pods, self.logs = {}, {}, {}, {}
        self.fail_create = None
        self.suspends = []
        self.deleted = 0
        self.workloads, self.activations = {}, []
        self.asked = []  # the kind of every object ensure() was asked for
        self.device_infos = {}  # node -> its device-info ConfigMap

    def ensure(self, obj):
        self.asked.append(obj["kind"])
        if self.fail_create and obj["kind"] == self.fail_create:
            raise ApiException(status=403, reason="Forbidden")
        key = (obj["kind"], obj["metadata"]["name"])
        if key in self.objects:
            mine = {o["uid"] for o in obj["metadata"].get("ownerReferences") or []}
            theirs = {o["uid"] for o in self.objects[key]["metadata"].get("ownerReferences") or []}
            if obj["kind"] != "Job" and mine and not mine & theirs:
                raise ForeignObject(*key)
            return False
        self.objects[key] = obj
        if obj["kind"] == "Job":
            self.jobs[obj["metadata"]["name"]] = json.loads(json.dumps(obj))
            self.jobs[obj["metadata"]["name"]]["metadata"]["uid"] = "uid-" + obj["metadata"]["name"]
            self.jobs[obj["metadata"]["name"]]["status"] = {"startTime": "2026-01-01T00:00:00Z"}
            self.pods[obj["metadata"]["name"]] = [{"metadata": {"name": obj["metadata"]["name"] + "-0"},
                                                   "status": {"phase": "Running"}}]
        return True

    def find_job(self, ns, name):
        return json.loads(json.dumps(self.jobs[name])) if name in self.jobs else None

    def job_pods(self, ns, name):
        return self.pods.get(name, [])

    def pod_log_tail(self, ns, pod, lines):
        return self.logs.get(pod, "")

    def set_job_suspend(self, ns, name, suspend):
        self.suspends.append((name, suspend))
        self.jobs[name]["spec"]["suspend"] = suspend

    def device_info(self, node):
        return self.device_infos.get(node)

    def workload_of(self, ns, job_uid):
        return self.workloads.get(job_uid)

    def set_workload_active(self, ns, name, active):
        self.activations.append((name, active))

    def delete_job(self, ns, name, uid, foreground=False):
        self.jobs.pop(name, None)
        self.objects.pop(("Job", name), None)
        self.pods.pop(name, None)

    def delete_jobs(self, ns, run):
        self.deleted = len(self.jobs)
        self.jobs.clear()
        return self.deleted

    def finish(self, name, code, message, failed=0, reason="BackoffLimitExceeded"):
        job = self.jobs[name]
        ok = code == 0
        job["status"].update(failed=failed, conditions=[{"type": "Complete" if ok else "Failed", "status": "True",
                                                         "reason": "" if ok else reason,
                                                         "lastTransitionTime": "2026-01-01T00:01:00Z"}],
                             completionTime="2026-01-01T00:01:00Z" if ok else None)
        self.pods[name] = [{"metadata": {"name": name + "-0"}, "status": {
            "phase": "Succeeded" if ok else "Failed",
            "containerStatuses": [{"name": "stage", "state": {"terminated": {
                "exitCode": code, "message": message, "finishedAt": "2026-01-01T00:01:00Z"}}}]}}]


@pytest.fixture
def world(cpu_run):
    return cpu_run, Fake(), Metrics(CollectorRegistry()), progress.Throttle(0)


def step(run, fake, metrics, throttle, now=1000.0):
    out = reconcile.run_pass(run, fake, now=now, metrics=metrics, throttle=throttle,
                             settings=reconcile.Settings(progress_interval=0))
    run["status"] = out.status
    return out


def _declared(node, value, path="status"):
    """Every key written is declared in the CRD schema (else the API server
    prunes it and kopf reports 'Patching failed with inconsistencies')."""
    if isinstance(value, dict):
        props = node.get("properties")
        extra = node.get("additionalProperties")
        for key, child in value.items():
            if props is not None and key in props:
                _declared(props[key], child, f"{path}.{key}")
            elif isinstance(extra, dict):
                _declared(extra, child, f"{path}.{key}")
            else:
                raise AssertionError(f"{path}.{key} is written but not declared in the CRD")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _declared(node["items"], item, f"{path}[{i}]")
    else:
        typ = node.get("type")
        ok = {"integer": isinstance(value, int) and not isinstance(value, bool),
              "number": isinstance(value, (int, float)) and not isinstance(value, bool),
              "string": isinstance(value, str), "boolean": isinstance(value, bool)}.get(typ, True)
        assert ok, f"{path} = {value!r} is not a {typ}"


def test_full_run_in_order_with_results_conditions_and_events(world):
    run, fake, metrics, throttle = world
    status_schema = schema()["properties"]["status"]
    out = step(run, fake, metrics, throttle)
    assert list(fake.jobs) == ["run-cpu-prepare"]
    assert ("ConfigMap", "run-cpu-spec") in fake.objects and ("PersistentVolumeClaim", "run-cpu-work") in fake.objects
    assert [e.reason for e in out.events] == ["Created", "Created", "StageStarted"]
    assert run["status"]["phase"] == "Running" and run["status"]["stage"] == "prepare"
    # A pass that changes nothing creates nothing.
    out = step(run, fake, metrics, throttle)
    assert out.events == [] and len(fake.jobs) == 1
    fake.logs["run-cpu-train-0"] = ('mathtune-progress {"epoch":2,"epochs":2,"step":10,"steps":25,"loss":2.5,'
                                    '"samplesPerSecond":3.5,"etaSeconds":60,"epochLoss":{"1":2.75,"x":1}}\n')
    fake.logs["run-cpu-evaluate-0"] = 'mathtune-progress {"stage":"evaluate","epoch":1,"epochs":3,"step":5,"steps":20}\n'
    for stage in ["prepare", "tokenize", "train", "merge", "evaluate", "predict", "report", "export"]:
        if stage == "evaluate":
            step(run, fake, metrics, throttle)
            assert run["status"]["progress"]["summary"] == "evaluate model 1/3 question 5/20 8.3%"
            assert run["status"]["progress"]["loss"] == 1.25  # training's, kept for the LOSS column
        if stage == "train":
            step(run, fake, metrics, throttle)
            prog = run["status"]["progress"]
            assert prog["loss"] == 2.5 and prog["summary"] == "train epoch 2/2 step 10/25 70.0%"
            assert prog["epochLoss"] == {"1": 2.75}  # what is no epoch is left out
        fake.finish(f"run-cpu-{stage}", 0, json.dumps({"stage": stage, "ok": True, **RESULTS[stage]}))
        out = step(run, fake, metrics, throttle)
        _declared(status_schema, run["status"])
    status = run["status"]
    assert status["phase"] == "Succeeded" and status["stage"] == "Done"
    assert [r["state"] for r in status["stages"]] == ["Succeeded"] * 8  # run-cpu.yaml exports
    res = status["results"]
    assert res["exports"] == [{**RESULTS["export"]["artifacts"][0], "epoch": 2}]
    assert res["rows"]["classified"] == {"add": 120, "mean": 80} and res["bestEpoch"] == 2
    assert res["lowParamRatio"] == pytest.approx(0.04096) and res["mathAccuracy"] == 0.2
    assert status["progress"]["loss"] == 1.25  # the final loss stays for the LOSS column
    # Each epoch's loss: epoch 1 from the progress line, epoch 2 (no line read after it) from train's result.
    assert status["progress"]["epochLoss"] == {"1": 2.75, "2": 1.3}
    # Once done, PROGRESS says what the run found; the columns show text a person reads.
    assert status["progress"]["summary"] == "done: best epoch 2, F1 9.90, acc 20.0%, gate passed"
    assert status["progress"]["percent"] == 100.0
    assert status["display"] == {"f1": "9.90", "em": f"{res['em']:.2f}", "mathAccuracy": "20.0%"}
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["Succeeded"]["status"] == "True" and conds["Ready"]["reason"] == "RunSucceeded"
    assert conds["Trained"]["status"] == "True" and conds["Failed"]["status"] == "False"
    assert conds["Exported"]["status"] == "True"
    assert all(c["observedGeneration"] == 1 for c in status["conditions"])
    assert "RunSucceeded" in [e.reason for e in out.events]
    text = metrics.exposition().decode()
    assert 'mathtune_run_status{namespace="ns1",phase="Succeeded",run="run-cpu"} 1.0' in text
    assert 'mathtune_stage_duration_seconds_count{result="Succeeded",stage="train"} 1.0' in text
    assert 'mathtune_quality_gate_passed{namespace="ns1",run="run-cpu"} 1.0' in text


@pytest.mark.parametrize("needed,free,sufficient", [(300 * 2**30, 120 * 2**30, "False"),
                                                     (100 * 2**30, 120 * 2**30, "True")])
def test_prepare_warns_when_the_later_stages_will_not_fit_the_volume(world, needed, free, sufficient):
    run, fake, metrics, throttle = world
    status_schema = schema()["properties"]["status"]
    step(run, fake, metrics, throttle)
    fake.finish("run-cpu-prepare", 0, json.dumps({"stage": "prepare", "ok": True, **RESULTS["prepare"],
                                                  "disk": {"neededBytes": needed, "freeBytes": free}}))
    out = step(run, fake, metrics, throttle)
    _declared(status_schema, run["status"])
    assert run["status"]["results"]["volume"] == {"neededBytes": needed, "freeBytes": free}
    cond = {c["type"]: c for c in run["status"]["conditions"]}["VolumeSufficient"]
    assert cond["status"] == sufficient
    warnings = [e for e in out.events if e.reason == "VolumeTooSmall"]
    if sufficient == "False":
        assert cond["reason"] == "VolumeTooSmall" and "120.0 GiB free" in cond["message"]
        assert "about 300.0 GiB" in cond["message"] and "spec.storage.size" in cond["message"]
        assert len(warnings) == 1 and warnings[0].type == "Warning"
    else:
        assert cond["reason"] == "VolumeLargeEnough" and not warnings
    # A warning, not a failure: the run goes on, and the condition stays.
    assert run["status"]["phase"] == "Running" and run["status"]["stage"] == "tokenize"
    step(run, fake, metrics, throttle)
    assert {c["type"]: c for c in run["status"]["conditions"]}["VolumeSufficient"]["status"] == sufficient


def test_under_kueue_a_stage_job_waits_for_admission_and_says_why(world):
    run, fake, metrics, throttle = world
    run["spec"]["scheduling"]["localQueue"] = "npu"
    step(run, fake, metrics, throttle)
    job = fake.jobs["run-cpu-prepare"]
    # Made suspended, for Kueue to admit; the queue label on the Job only.
    assert job["spec"]["suspend"] is True and job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "npu"
    assert "kueue.x-k8s.io/queue-name" not in job["spec"]["template"]["metadata"]["labels"]
    step(run, fake, metrics, throttle)
    ready = {c["type"]: c for c in run["status"]["conditions"]}["Ready"]
    assert run["status"]["phase"] == "Pending" and ready["status"] == "False" and ready["reason"] == "Queued"
    assert "queued in Kueue LocalQueue npu: Kueue has not made its Workload yet" in ready["message"]
    quota = ("couldn't assign flavors to pod set main: insufficient unused quota for huawei.com/Ascend910 in "
             "flavor ascend, 16 more needed")
    fake.workloads["uid-run-cpu-prepare"] = {"metadata": {"name": "job-run-cpu-prepare-3f2a1"}, "status": {
        "conditions": [{"type": "QuotaReserved", "status": "False", "reason": "Pending", "message": quota}]}}
    out = step(run, fake, metrics, throttle)
    assert h_row(run, "prepare")["message"].endswith(quota)
    assert [e.reason for e in out.events] == ["Queued"] and out.events[0].type == "Normal"
    assert step(run, fake, metrics, throttle).events == [], "one Event per reason, not one per pass"
    # The run's suspend goes to the Workload; the Job's suspend is Kueue's.
    run["spec"]["runPolicy"]["suspend"] = True
    step(run, fake, metrics, throttle)
    assert fake.activations == [("job-run-cpu-prepare-3f2a1", False)] and fake.suspends == []
    assert run["status"]["phase"] == "Suspended"
    run["spec"]["runPolicy"]["suspend"] = False
    step(run, fake, metrics, throttle)
    assert fake.activations[-1] == ("job-run-cpu-prepare-3f2a1", True) and fake.suspends == []
    # Admitted: Kueue unsuspends the Job, and the stage runs.
    fake.jobs["run-cpu-prepare"]["spec"]["suspend"] = False
    step(run, fake, metrics, throttle)
    assert run["status"]["phase"] == "Running" and h_row(run, "prepare")["state"] == "Running"
    assert "message" not in h_row(run, "prepare"), "the queue's words are gone once admitted"


def h_row(run, stage):
    return next(r for r in run["status"]["stages"] if r["name"] == stage)


def test_retry_then_permanent_failure_names_stage_and_message(world):
    run, fake, metrics, throttle = world
    step(run, fake, metrics, throttle)
    job = fake.jobs["run-cpu-prepare"]
    job["status"]["failed"] = 1
    fake.pods["run-cpu-prepare"] = [
        {"metadata": {"name": "a"}, "status": {"phase": "Failed", "containerStatuses": [
            {"name": "stage", "state": {"terminated": {"exitCode": 1, "message": "ConnectionError: s3 timeout",
                                                       "finishedAt": "2026-01-01T00:00:30Z"}}}]}},
        {"metadata": {"name": "b"}, "status": {"phase": "Running"}}]
    out = step(run, fake, metrics, throttle)
    assert [e.reason for e in out.events] == ["StageRetrying"]
    row = run["status"]["stages"][0]
    assert row["state"] == "Retrying" and row["attempts"] == 2 and "s3 timeout" in row["message"]
    assert 'mathtune_stage_retries_total{stage="prepare"} 1.0' in metrics.exposition().decode()
    err = json.dumps({"stage": "prepare", "ok": False, "error": "data.source.uri: a readable file"})
    fake.finish("run-cpu-prepare", 2, err, failed=2, reason="PodFailurePolicy")
    out = step(run, fake, metrics, throttle)
    status = run["status"]
    assert status["phase"] == "Failed" and status["stage"] == "prepare"
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["Failed"]["status"] == "True" and conds["Failed"]["reason"] == "StageFailed"
    assert "stage prepare failed" in conds["Failed"]["message"]
    assert "data.source.uri: a readable file" in conds["Failed"]["message"]
    assert "permanent" in conds["Failed"]["message"]
    assert [e.reason for e in out.events] == ["StageFailed"]
    # Finished runs stay finished: no new Jobs.
    step(run, fake, metrics, throttle)
    assert list(fake.jobs) == ["run-cpu-prepare"]


def test_create_failure_still_sets_conditions(world):
    run, fake, metrics, throttle = world
    fake.fail_create = "Job"
    out = step(run, fake, metrics, throttle)
    conds = {c["type"]: c for c in run["status"]["conditions"]}
    assert conds["Ready"]["status"] == "False" and conds["Ready"]["reason"] == "CreateJobFailed"
    assert "403" in conds["Ready"]["message"]
    assert "CreateJobFailed" in [e.reason for e in out.events]
    assert 'mathtune_reconcile_errors_total{reason="CreateJobFailed"} 1.0' in metrics.exposition().decode()
    # Still refused on the next passes: no new Event each time (a blocked run
    # posted one every 5 s), the counter counts each try.
    for _ in range(3):
        assert "CreateJobFailed" not in [e.reason for e in step(run, fake, metrics, throttle).events]
    assert 'mathtune_reconcile_errors_total{reason="CreateJobFailed"} 4.0' in metrics.exposition().decode()
    fake.fail_create = None
    step(run, fake, metrics, throttle)
    conds = {c["type"]: c for c in run["status"]["conditions"]}
    assert conds["Ready"]["status"] == "True" and "run-cpu-prepare" in fake.jobs


def test_suspend_and_resume(world):
    run, fake, metrics, throttle = world
    step(run, fake, metrics, throttle)
    run["spec"]["runPolicy"]["suspend"] = True
    out = step(run, fake, metrics, throttle)
    assert fake.suspends == [("run-cpu-prepare", True)] and "Suspended" in [e.reason for e in out.events]
    assert run["status"]["phase"] == "Suspended"
    conds = {c["type"]: c for c in run["status"]["conditions"]}
    assert conds["Suspended"]["status"] == "True" and conds["Ready"]["reason"] == "Suspended"
    run["spec"]["runPolicy"]["suspend"] = False
    out = step(run, fake, metrics, throttle)
    assert fake.suspends[-1] == ("run-cpu-prepare", False) and "Resumed" in [e.reason for e in out.events]
    assert run["status"]["phase"] == "Running"


def test_a_jobs_suspend_is_changed_only_when_the_runs_changes(world):
    """Kueue (or an administrator) suspends and admits Jobs; the operator
    must not force the Job back to the run's value on every pass."""
    run, fake, metrics, throttle = world
    step(run, fake, metrics, throttle)
    fake.jobs["run-cpu-prepare"]["spec"]["suspend"] = True  # suspended by someone else
    for _ in range(3):
        step(run, fake, metrics, throttle)
    assert fake.suspends == [] and fake.jobs["run-cpu-prepare"]["spec"]["suspend"] is True
    # The user's own change still applies, once.
    run["spec"]["runPolicy"]["suspend"] = True
    step(run, fake, metrics, throttle)
    run["spec"]["runPolicy"]["suspend"] = False
    step(run, fake, metrics, throttle)
    step(run, fake, metrics, throttle)
    assert fake.suspends == [("run-cpu-prepare", False)]


def test_ttl_deletes_jobs_once(world):
    run, fake, metrics, throttle = world
    run["spec"]["runPolicy"]["ttlSecondsAfterFinished"] = 60
    step(run, fake, metrics, throttle)
    fake.finish("run-cpu-prepare", 2, json.dumps({"stage": "prepare", "ok": False, "error": "bad"}), failed=1)
    step(run, fake, metrics, throttle, now=1000)
    done = reconcile.parse_time(run["status"]["completionTime"])
    step(run, fake, metrics, throttle, now=done + 30)
    assert fake.jobs and "jobsDeletedAt" not in run["status"]
    out = step(run, fake, metrics, throttle, now=done + 61)
    assert not fake.jobs and run["status"]["jobsDeletedAt"] and "JobsDeleted" in [e.reason for e in out.events]


def test_a_stored_spec_the_model_refuses_stops_the_pass_and_names_the_field(world):
    """A resource stored before a CRD change may break a rule the API model
    now holds: the pass touches nothing, and Ready says which field and what
    it must be; fixing the spec lets the run go on."""
    run, fake, metrics, throttle = world
    step(run, fake, metrics, throttle)
    assert fake.asked[-1] == "Job" and run["status"]["phase"] == "Running"
    asked, jobs = list(fake.asked), dict(fake.jobs)
    run["spec"]["training"]["epochs"] = 0
    out = step(run, fake, metrics, throttle, now=1010)
    ready = st.get_condition(run["status"]["conditions"], "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "SpecUnreadable")
    assert "spec.training.epochs: Input should be greater than or equal to 1" in ready["message"]
    assert [(e.type, e.reason) for e in out.events] == [("Warning", "SpecUnreadable")]
    assert fake.asked == asked and fake.jobs == jobs and fake.deleted == 0
    assert run["status"]["phase"] == "Running" and run["status"]["stages"][0]["state"] == "Running"
    _declared(schema()["properties"]["status"], run["status"])
    assert step(run, fake, metrics, throttle, now=1020).events == []   # said once while it lasts
    run["spec"]["training"]["epochs"] = 1
    step(run, fake, metrics, throttle, now=1030)
    assert st.get_condition(run["status"]["conditions"], "Ready")["reason"] != "SpecUnreadable"


def test_an_ended_run_keeps_its_outcome_when_its_stored_spec_is_refused(world):
    run, fake, metrics, throttle = world
    step(run, fake, metrics, throttle)
    fake.finish("run-cpu-prepare", 2, json.dumps({"stage": "prepare", "ok": False, "error": "bad"}), failed=1)
    step(run, fake, metrics, throttle)
    ended = json.loads(json.dumps(run["status"]))
    assert ended["phase"] == "Failed"
    run["spec"]["bogus"] = True
    out = step(run, fake, metrics, throttle, now=1010)
    assert run["status"] == ended
    assert [e.reason for e in out.events] == ["SpecUnreadable"] and "spec.bogus" in out.events[0].message


def test_condition_transition_time_moves_only_on_change():
    conds = st.set_condition([], "Ready", "True", "A", "m", 1, "t1")
    conds = st.set_condition(conds, "Ready", "True", "B", "m2", 2, "t2")
    assert conds[0]["lastTransitionTime"] == "t1" and conds[0]["reason"] == "B"
    conds = st.set_condition(conds, "Ready", "False", "C", "m3", 2, "t3")
    assert conds[0]["lastTransitionTime"] == "t3"
    assert st.changed({"a": 1, "b": [1]}, {"a": 1, "b": [1, 2]}) == {"b": [1, 2]}


def test_status_patch_deletes_what_is_gone():
    """A merge patch deletes a key only when it says null: etaSeconds of a
    finished stage must not linger."""
    old = {"phase": "Running", "progress": {"stage": "train", "loss": 1.2, "etaSeconds": 300}, "gone": 1}
    new = {"phase": "Running", "progress": {"stage": "train", "loss": 0.9}}
    assert st.changed(old, new) == {"progress": {"loss": 0.9, "etaSeconds": None}, "gone": None}
    assert st.changed(new, new) == {}


def test_a_non_finite_loss_never_reaches_a_patch_but_reaches_the_metric():
    """json.loads reads NaN from a progress line; a patch holding it is not
    JSON and the API server refuses it, freezing the run's status for good."""
    line = progress.newest('mathtune-progress {"epoch":1,"epochs":2,"step":3,"steps":5,"loss":NaN}\n')
    prog = progress.to_status("train", line, "2026-11-30T00:00:00Z")
    assert "loss" not in prog and prog["lossNonFinite"] == "NaN"
    patch = st.changed({}, {"phase": "Running", "progress": prog, "results": {"f1": float("inf")}})
    json.dumps(patch, allow_nan=False)  # raises on NaN/Infinity
    assert patch["results"] == {"f1": None}

    metrics = Metrics(CollectorRegistry())
    metrics.observe_run("ns", "r", "Running", "train", {"progress": prog}, None)
    value = metrics.train_loss.labels("ns", "r")._value.get()
    assert value != value  # NaN: the chart's MathFinetuneLossNaN alert matches `x != x`

    healthy = progress.to_status("train", {"epoch": 1, "epochs": 2, "step": 4, "steps": 5, "loss": 0.5}, "t")
    assert healthy["loss"] == 0.5 and "lossNonFinite" not in healthy
    assert st.changed({"progress": prog}, {"progress": healthy})["progress"]["lossNonFinite"] is None


def test_metrics_exposition_passes_promtool(world, tmp_path):
    run, fake, metrics, throttle = world
    fake.logs["run-cpu-train-0"] = 'mathtune-progress {"epoch":1,"epochs":2,"step":1,"steps":5,"loss":3.0}\n'
    for stage in ["prepare", "tokenize"]:
        step(run, fake, metrics, throttle)
        fake.finish(f"run-cpu-{stage}", 0, json.dumps({"stage": stage, "ok": True, **RESULTS[stage]}))
    step(run, fake, metrics, throttle)
    step(run, fake, metrics, throttle)
    text = metrics.exposition()
    assert b'mathtune_train_loss{namespace="ns1",run="run-cpu"} 3.0' in text
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: run `make prometheus` (Debian's prometheus package)"
    proc = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True)
    assert proc.returncode == 0 and not proc.stdout.strip() and not proc.stderr.strip(), proc.stdout + proc.stderr
    metrics.forget_run("ns1", "run-cpu")
    assert b'run="run-cpu"' not in metrics.exposition()


def test_unschedulable_pod_is_explained(world):
    run, fake, metrics, throttle = world
    step(run, fake, metrics, throttle)
    why = "0/4 nodes are available: 2 Insufficient huawei.com/Ascend910, 2 node(s) didn't match Pod's node affinity"
    fake.pods["run-cpu-prepare"] = [{"metadata": {"name": "run-cpu-prepare-x"}, "status": {
        "phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                            "message": why}]}}]
    out = step(run, fake, metrics, throttle)
    conds = {c["type"]: c for c in run["status"]["conditions"]}
    assert conds["Ready"]["status"] == "False" and conds["Ready"]["reason"] == "Unschedulable"
    assert why in conds["Ready"]["message"] and why in run["status"]["stages"][0]["message"]
    assert [e.reason for e in out.events] == ["Unschedulable"]
    assert step(run, fake, metrics, throttle).events == []  # said once, not every pass
    fake.pods["run-cpu-prepare"] = [{"metadata": {"name": "run-cpu-prepare-x"}, "status": {"phase": "Running"}}]
    step(run, fake, metrics, throttle)
    conds = {c["type"]: c for c in run["status"]["conditions"]}
    assert conds["Ready"]["status"] == "True" and "message" not in run["status"]["stages"][0]


@pytest.mark.parametrize("reason, message", [
    ("ErrImageNeverPull", 'Container image "mathtune/pipeline-cpu:0.1.0" is not present with pull policy of Never'),
    ("ImagePullBackOff", 'Back-off pulling image "registry.example.com/mathtune/pipeline-ascend:0.1.0"'),
    ("CreateContainerConfigError", 'secret "obs-credentials" not found'),
    ("CrashLoopBackOff", "back-off 40s restarting failed container=stage"),
])
def test_a_stage_whose_container_cannot_start_is_not_ready(world, reason, message):
    """Scheduled, but the kubelet cannot start the container: the stage makes
    no progress, and Ready says why in the kubelet's words (not StageRunning)."""
    run, fake, metrics, throttle = world
    step(run, fake, metrics, throttle)
    fake.pods["run-cpu-prepare"] = [{"metadata": {"name": "run-cpu-prepare-x"}, "status": {
        "phase": "Pending", "containerStatuses": [{"name": "stage", "ready": False, "restartCount": 0,
                                                   "state": {"waiting": {"reason": reason, "message": message}}}]}}]
    out = step(run, fake, metrics, throttle)
    ready = {c["type"]: c for c in run["status"]["conditions"]}["Ready"]
    assert ready["status"] == "False" and ready["reason"] == reason, ready
    assert message in ready["message"] and message in run["status"]["stages"][0]["message"]
    assert [e.reason for e in out.events] == [reason]
    assert step(run, fake, metrics, throttle).events == []  # said once, not every pass
    fake.pods["run-cpu-prepare"] = [{"metadata": {"name": "run-cpu-prepare-x"}, "status": {"phase": "Running"}}]
    step(run, fake, metrics, throttle)
    ready = {c["type"]: c for c in run["status"]["conditions"]}["Ready"]
    assert ready["status"] == "True" and "message" not in run["status"]["stages"][0]


def test_a_spec_configmap_of_an_earlier_run_with_the_same_name_is_never_used(world):
    """A run deleted and re-created (the README's advice after a failure)
    before garbage collection took the old run's spec ConfigMap: its stages
    would have run the old recipe. The new run waits for it to go."""
    run, fake, metrics, throttle = world
    fake.objects[("ConfigMap", "run-cpu-spec")] = {"kind": "ConfigMap", "metadata": {
        "name": "run-cpu-spec", "ownerReferences": [{"uid": "uid-of-an-older-run"}]}}
    out = step(run, fake, metrics, throttle)
    row = run["status"]["stages"][0]
    ready = {c["type"]: c for c in run["status"]["conditions"]}["Ready"]
    assert not fake.jobs and row["state"] == "Pending" and "earlier run" in row["message"]
    assert ready["status"] == "False" and ready["reason"] == "WaitingForOldObject"
    assert [e.reason for e in out.events] == ["WaitingForOldObject"]
    assert step(run, fake, metrics, throttle).events == []  # said once
    del fake.objects[("ConfigMap", "run-cpu-spec")]  # garbage-collected
    step(run, fake, metrics, throttle)
    assert "run-cpu-prepare" in fake.jobs
    assert fake.objects[("ConfigMap", "run-cpu-spec")]["metadata"]["ownerReferences"][0]["uid"] == run["metadata"]["uid"]


def test_a_job_of_an_earlier_run_with_the_same_name_is_never_adopted(world):
    run, fake, metrics, throttle = world
    step(run, fake, metrics, throttle)
    fake.finish("run-cpu-prepare", 0, json.dumps({"stage": "prepare", "ok": True, **RESULTS["prepare"]}))
    fake.jobs["run-cpu-prepare"]["metadata"]["ownerReferences"][0]["uid"] = "uid-of-an-older-run"
    out = step(run, fake, metrics, throttle)
    row = run["status"]["stages"][0]
    assert row["state"] == "Pending" and "earlier run" in row["message"]
    assert "results" not in run["status"] or "rows" not in run["status"]["results"]
    assert [e.reason for e in out.events] == ["WaitingForOldJob"]
    conds = {c["type"]: c for c in run["status"]["conditions"]}
    assert conds["Ready"]["reason"] == "WaitingForOldJob"
    del fake.jobs["run-cpu-prepare"]  # garbage collection finished
    step(run, fake, metrics, throttle)
    assert run["status"]["stages"][0]["state"] == "Running" and "message" not in run["status"]["stages"][0]


def test_a_pass_whose_status_patch_was_lost_is_repeated_safely(world):
    """The operator dies after creating a Job but before status (and the
    pass's Events, posted after it) is written: the next pass sees the old
    status, finds the Job, creates nothing and posts the lost StageStarted."""
    run, fake, metrics, throttle = world
    step(run, fake, metrics, throttle)
    fake.finish("run-cpu-prepare", 0, json.dumps({"stage": "prepare", "ok": True, **RESULTS["prepare"]}))
    before = json.loads(json.dumps(run["status"]))
    step(run, fake, metrics, throttle)  # prepare recorded, tokenize Job created ...
    assert "run-cpu-tokenize" in fake.jobs
    run["status"] = before  # ... but that status never reached the API server
    out = step(run, fake, metrics, throttle)
    assert sorted(fake.jobs) == ["run-cpu-prepare", "run-cpu-tokenize"]
    assert [e.reason for e in out.events] == ["StageSucceeded", "StageStarted"]
    assert [r["state"] for r in run["status"]["stages"][:2]] == ["Succeeded", "Running"]


def test_a_stage_job_deleted_while_it_runs_is_created_again(world):
    run, fake, metrics, throttle = world
    step(run, fake, metrics, throttle)
    fake.delete_job("ns1", "run-cpu-prepare", None)  # kubectl delete job run-cpu-prepare
    out = step(run, fake, metrics, throttle)
    assert "run-cpu-prepare" in fake.jobs
    assert [(e.type, e.reason) for e in out.events] == [("Warning", "StageRestarted")]
    assert run["status"]["stages"][0]["state"] == "Running"


def test_a_result_lost_with_its_pod_runs_the_stage_again(world):
    """The Job completed, but its pod (the result) was deleted before a pass
    read it: the stage runs again rather than failing the run."""
    run, fake, metrics, throttle = world
    step(run, fake, metrics, throttle)
    fake.finish("run-cpu-prepare", 0, json.dumps({"stage": "prepare", "ok": True, **RESULTS["prepare"]}))
    fake.pods["run-cpu-prepare"] = []  # kubectl delete pod, before the operator saw it
    out = step(run, fake, metrics, throttle)
    assert "run-cpu-prepare" not in fake.jobs and run["status"]["phase"] == "Running"
    assert [e.reason for e in out.events] == ["ResultLost"]
    out = step(run, fake, metrics, throttle)
    assert [e.reason for e in out.events] == ["StageRestarted"] and "run-cpu-prepare" in fake.jobs
    fake.finish("run-cpu-prepare", 0, json.dumps({"stage": "prepare", "ok": True, **RESULTS["prepare"]}))
    step(run, fake, metrics, throttle)
    assert run["status"]["stages"][0]["state"] == "Succeeded"
    assert run["status"]["results"]["rows"]["read"] == 200


def test_a_complete_job_whose_pod_still_looks_running_is_a_lagging_view_not_a_lost_result(world):
    """The pod and Job watches are separate streams: the Job may be seen
    Complete before its pod is seen Succeeded. That must never delete the Job."""
    run, fake, metrics, throttle = world
    step(run, fake, metrics, throttle)
    fake.finish("run-cpu-prepare", 0, json.dumps({"stage": "prepare", "ok": True, **RESULTS["prepare"]}))
    fake.pods["run-cpu-prepare"] = [{"metadata": {"name": "run-cpu-prepare-0"}, "status": {"phase": "Running"}}]
    before = json.loads(json.dumps(run["status"]))
    out = step(run, fake, metrics, throttle)
    assert "run-cpu-prepare" in fake.jobs and out.events == []
    assert run["status"]["stages"][0]["state"] == "Running"
    # ... and asks for no status patch: the pod's update follows within a second.
    assert st.changed(before, out.status) == {}


def test_the_pass_after_a_stage_starts_asks_for_no_status_patch(world):
    """Creating a stage's Job and seeing it are two passes a few
    milliseconds apart; the second has nothing new to say. (It used to
    reword Ready from "started" to "running": one more write of the whole
    run per stage, about half the API server's work for runs at scale.)"""
    run, fake, metrics, throttle = world
    step(run, fake, metrics, throttle)  # prepare's Job created
    for pod_phase in ("Pending", "Running"):
        fake.pods["run-cpu-prepare"][0]["status"]["phase"] = pod_phase
        before = json.loads(json.dumps(run["status"]))
        assert st.changed(before, step(run, fake, metrics, throttle).status) == {}, pod_phase
    fake.finish("run-cpu-prepare", 0, json.dumps({"stage": "prepare", "ok": True, **RESULTS["prepare"]}))
    step(run, fake, metrics, throttle)  # prepare recorded, tokenize's Job created
    before = json.loads(json.dumps(run["status"]))
    assert st.changed(before, step(run, fake, metrics, throttle).status) == {}
    ready = next(c for c in run["status"]["conditions"] if c["type"] == "Ready")
    assert ready["message"] == "stage tokenize running (attempt 1)"


def test_later_stages_ask_for_no_prerequisite_again(world):
    """The spec ConfigMap and the claim are made before the first stage, and
    never changed: later stages create their Job only."""
    run, fake, metrics, throttle = world
    step(run, fake, metrics, throttle)
    assert fake.asked == ["ConfigMap", "PersistentVolumeClaim", "Job"]
    fake.finish("run-cpu-prepare", 0, json.dumps({"stage": "prepare", "ok": True, **RESULTS["prepare"]}))
    fake.asked.clear()
    step(run, fake, metrics, throttle)
    assert run["status"]["stage"] == "tokenize" and fake.asked == ["Job"]


def test_each_pass_says_when_it_needs_the_next(world):
    run, fake, metrics, throttle = world
    settings = reconcile.Settings(progress_interval=7, resync_interval=300, blocked_retry=15)

    def again():
        out = reconcile.run_pass(run, fake, now=1000.0, metrics=metrics, throttle=throttle, settings=settings)
        run["status"] = out.status
        return out.requeue_after

    assert again() == 300  # prepare: its Job's events will wake the run; resync as a safety net
    for stage in ["prepare", "tokenize"]:
        fake.finish(f"run-cpu-{stage}", 0, json.dumps({"stage": stage, "ok": True, **RESULTS[stage]}))
        last = again()
    assert run["status"]["stage"] == "train" and last == 7  # training: read its progress lines
    fake.fail_create = "Job"
    for stage in ["train"]:
        fake.finish(f"run-cpu-{stage}", 0, json.dumps({"stage": stage, "ok": True, **RESULTS[stage]}))
    assert again() == 15  # merge's Job refused: nothing we watch says when to try again
    fake.fail_create = None
    run["spec"]["runPolicy"]["ttlSecondsAfterFinished"] = 60
    for stage in ["merge", "evaluate", "predict", "report", "export"]:
        again()
        fake.finish(f"run-cpu-{stage}", 0, json.dumps({"stage": stage, "ok": True, **RESULTS[stage]}))
    assert again() == 60 and run["status"]["phase"] == "Succeeded"  # at its TTL
    out = reconcile.run_pass(run, fake, now=1060.0, metrics=metrics, throttle=throttle, settings=settings)
    assert out.requeue_after is None and out.status["jobsDeletedAt"]  # a finished run costs nothing more
