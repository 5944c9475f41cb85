"""The operator under trouble, on the real control plane: restarts, failing
stages, suspend, delete, and spec changes after start."""
import json

import pytest
from kubernetes.client.exceptions import ApiException

from . import helpers as h

pytestmark = pytest.mark.integration


def _run(custom, ns, name):
    return h.get_run(custom, ns, name)


def _until_stage(custom, ns, name, stage, state, timeout=60):
    return h.wait(lambda: h.stage_row(_run(custom, ns, name), stage).get("state") == state and _run(custom, ns, name),
                  timeout, f"stage {stage} {state}")


def _start(apis, namespace, volumes, name, **updates):
    h.bind_work_volume(apis["core"], namespace, f"{name}-work", volumes)
    h.create_run(apis["custom"], namespace, h.run_doc("run-cpu.yaml", name, **updates))


def _pass(apis, ns, name, stages):
    for stage in stages:
        h.finish_stage(apis["core"], ns, f"{name}-{stage}", 0, h.result(stage))
        _until_stage(apis["custom"], ns, name, stage, "Succeeded")


def test_operator_killed_mid_training_resumes_without_duplicates(namespace, apis, operator, volumes):
    core, batch, custom = apis["core"], apis["batch"], apis["custom"]
    name = "restart"
    _start(apis, namespace, volumes, name)
    _pass(apis, namespace, name, ["prepare", "tokenize"])
    h.running_pod(core, namespace, f"{name}-train")
    first = {j.metadata.name: j.metadata.uid for j in h.jobs_of(batch, namespace, name)}
    operator.kill()
    # While it is down: training finishes, and the user changes the image
    # (allowed after start: it applies to stages not yet started).
    h.finish_stage(core, namespace, f"{name}-train", 0, h.result("train"))
    h.patch_run(custom, namespace, name, {"spec": {"images": {"pipeline": "mathtune/pipeline-cpu:0.2.0"}}})
    operator.start()
    _until_stage(custom, namespace, name, "train", "Succeeded")
    merge = h.running_pod(core, namespace, f"{name}-merge")
    assert merge.spec.containers[0].image == "mathtune/pipeline-cpu:0.2.0"
    # Kill again right as merge runs, restart at once: nothing is created twice.
    operator.kill()
    operator.start()
    _pass(apis, namespace, name, ["merge"])
    h.running_pod(core, namespace, f"{name}-evaluate")
    jobs = sorted(j.metadata.name for j in h.jobs_of(batch, namespace, name))
    assert jobs == sorted(f"{name}-{s}" for s in ("prepare", "tokenize", "train", "merge", "evaluate"))
    for job in ("train", "merge"):
        pods = core.list_namespaced_pod(namespace, label_selector=f"batch.kubernetes.io/job-name={name}-{job}").items
        assert len(pods) == 1, [p.metadata.name for p in pods]
    run = _run(custom, namespace, name)
    assert h.stage_row(run, "train")["attempts"] == 1
    # No Job made twice (what five StageStarted Events mean, without counting Event objects a kill may lose).
    now = {j.metadata.name: j.metadata.uid for j in h.jobs_of(batch, namespace, name)}
    assert {job: now[job] for job in first} == first
    assert "Patching failed with inconsistencies" not in operator.logs()


def test_failed_training_attempt_is_retried_and_resumes(namespace, apis, operator, volumes):
    core, custom = apis["core"], apis["custom"]
    name = "retry"
    _start(apis, namespace, volumes, name, runPolicy={"backoffLimit": 1})
    _pass(apis, namespace, name, ["prepare", "tokenize"])
    first = h.finish_stage(core, namespace, f"{name}-train", 1,
                           {"stage": "train", "ok": False, "error": "RuntimeError: HCCL timeout on rank 1"})
    run = h.wait(lambda: h.stage_row(_run(custom, namespace, name), "train").get("attempts") == 2
                 and _run(custom, namespace, name), 60, "train attempt 2 in status")
    row = h.stage_row(run, "train")
    assert row["state"] == "Retrying" and "HCCL timeout" in row["message"]
    second = h.running_pod(core, namespace, f"{name}-train", timeout=120)  # after the Job's backoff
    assert second.metadata.name != first.metadata.name
    args = second.spec.containers[0].args
    assert args[args.index("--resume") + 1] == "auto"
    h.podsim.complete_pod(core, namespace, second.metadata.name, 0, h.json.dumps(h.result("train")))
    run = _until_stage(custom, namespace, name, "train", "Succeeded")
    assert h.stage_row(run, "train")["attempts"] == 2
    h.wait(lambda: "StageRetrying" in h.events_of(core, namespace, name), 30, "the StageRetrying Event")
    assert 'mathtune_stage_retries_total{stage="train"} 1.0' in operator.metrics()
    h.running_pod(core, namespace, f"{name}-merge")


def test_permanent_failure_fails_the_run_naming_stage_and_message(namespace, apis, operator, volumes):
    core, custom = apis["core"], apis["custom"]
    name = "broken"
    _start(apis, namespace, volumes, name, runPolicy={"backoffLimit": 3})
    h.finish_stage(core, namespace, f"{name}-prepare", 2, {
        "stage": "prepare", "ok": False, "error": "data.source.uri: a readable file (No such file: /data/x.jsonl)"})
    run = h.wait_phase(custom, namespace, name, "Failed")
    failed = h.condition(run, "Failed")
    assert failed["status"] == "True" and failed["reason"] == "StageFailed"
    assert "stage prepare failed" in failed["message"] and "data.source.uri: a readable file" in failed["message"]
    assert h.condition(run, "Ready")["status"] == "False" and h.condition(run, "Prepared")["reason"] == "Failed"
    assert run["status"]["stage"] == "prepare"
    # Exit code 2 is never retried, whatever backoffLimit says.
    pods = core.list_namespaced_pod(namespace, label_selector=f"batch.kubernetes.io/job-name={name}-prepare").items
    assert len(pods) == 1
    assert "StageFailed" in h.wait(lambda: h.events_of(core, namespace, name), 30, "events")
    assert h.jobs_of(apis["batch"], namespace, name)[0].metadata.name == f"{name}-prepare"


def test_retries_used_up_fail_the_run(namespace, apis, operator, volumes):
    core, custom = apis["core"], apis["custom"]
    name = "flaky"
    _start(apis, namespace, volumes, name, runPolicy={"backoffLimit": 0})
    h.finish_stage(core, namespace, f"{name}-prepare", 1, {"stage": "prepare", "ok": False,
                                                          "error": "ConnectionError: s3 endpoint unreachable"})
    run = h.wait_phase(custom, namespace, name, "Failed")
    message = h.condition(run, "Failed")["message"]
    assert "stage prepare failed after 1 attempt" in message and "s3 endpoint unreachable" in message
    # The operator that saw the run drops its series once it is deleted.
    h.wait(lambda: f'mathtune_run_status{{namespace="{namespace}",phase="Failed",run="{name}"}} 1.0'
           in operator.metrics(), 30, "the failed run's status series")
    custom.delete_namespaced_custom_object(h.GROUP, h.VERSION, namespace, h.PLURAL, name)
    h.wait(lambda: f'run="{name}"' not in operator.metrics(), 30, "every series of the deleted run dropped")


def test_suspend_stops_pods_and_resume_continues(namespace, apis, operator, volumes):
    core, batch, custom = apis["core"], apis["batch"], apis["custom"]
    name = "pause"
    _start(apis, namespace, volumes, name)
    _pass(apis, namespace, name, ["prepare"])
    h.running_pod(core, namespace, f"{name}-tokenize")
    h.patch_run(custom, namespace, name, {"spec": {"runPolicy": {"suspend": True}}})
    run = h.wait_phase(custom, namespace, name, "Suspended")
    assert h.condition(run, "Suspended")["status"] == "True"
    assert batch.read_namespaced_job(f"{name}-tokenize", namespace).spec.suspend is True
    h.wait(lambda: not h.live_pods(core, namespace, f"{name}-tokenize"), 60, "tokenize pods stopped")
    h.patch_run(custom, namespace, name, {"spec": {"runPolicy": {"suspend": False}}})
    _pass(apis, namespace, name, ["tokenize"])
    run = _run(custom, namespace, name)
    assert run["status"]["phase"] == "Running" and h.condition(run, "Suspended")["status"] == "False"
    reasons = h.events_of(core, namespace, name)
    assert "Suspended" in reasons and "Resumed" in reasons


def test_delete_removes_jobs_and_pods_and_keeps_the_claim(namespace, apis, operator, volumes):
    core, batch, custom = apis["core"], apis["batch"], apis["custom"]
    name = "gone"
    _start(apis, namespace, volumes, name)
    _pass(apis, namespace, name, ["prepare"])
    h.running_pod(core, namespace, f"{name}-tokenize")
    # Deleting needs no operator: no finalizer holds the run.
    operator.kill()
    assert not h.get_run(custom, namespace, name)["metadata"].get("finalizers")
    custom.delete_namespaced_custom_object(h.GROUP, h.VERSION, namespace, h.PLURAL, name)

    def run_gone():
        try:
            _run(custom, namespace, name)
            return False
        except ApiException as exc:
            return exc.status == 404
    h.wait(run_gone, 60, "the run deleted")
    h.wait(lambda: not h.jobs_of(batch, namespace, name), 90, "Jobs garbage-collected")
    h.wait(lambda: not core.list_namespaced_pod(namespace, label_selector=f"mathtune.dev/run={name}").items,
           90, "pods gone")
    pvc = core.read_namespaced_persistent_volume_claim(f"{name}-work", namespace)
    assert pvc.metadata.deletion_timestamp is None and pvc.status.phase == "Bound"


def test_pending_stage_says_why(namespace, apis, operator, volumes):
    core, custom = apis["core"], apis["custom"]
    name = "nowhere"
    _start(apis, namespace, volumes, name, scheduling={"nodeSelector": {"pool": "does-not-exist"}})
    # While the work volume's claim binds, the scheduler first says the claim is unbound: a
    # passing cause. What the user must end up reading is the lasting one, the node selector.
    run = h.wait_run(custom, namespace, name,
                     lambda r: h.condition(r, "Ready").get("reason") == "Unschedulable"
                     and "node affinity/selector" in h.condition(r, "Ready").get("message", ""),
                     "Ready=False Unschedulable, naming the node selector")
    message = h.condition(run, "Ready")["message"]
    assert "cannot be scheduled" in message and "node affinity/selector" in message, message
    assert h.condition(run, "Ready")["status"] == "False"
    h.wait(lambda: "Unschedulable" in h.events_of(core, namespace, name), 30, "the Unschedulable Event")


def test_refused_job_creation_is_reported_then_recovers(namespace, apis, operator, volumes):
    """A ResourceQuota that allows no Jobs: the API server refuses the stage's
    Job; conditions and an Event say so; once the quota goes, the run starts."""
    core, batch, custom = apis["core"], apis["batch"], apis["custom"]
    core.create_namespaced_resource_quota(namespace, {"metadata": {"name": "no-jobs"},
                                                      "spec": {"hard": {"count/jobs.batch": "0"}}})
    name = "refused"
    _start(apis, namespace, volumes, name)
    run = h.wait_run(custom, namespace, name, lambda r: h.condition(r, "Ready").get("reason") == "CreateJobFailed",
                     "Ready=False CreateJobFailed")
    ready = h.condition(run, "Ready")
    assert ready["status"] == "False"
    assert f"{name}-prepare" in ready["message"] and "403" in ready["message"], ready["message"]
    assert run["status"]["observedGeneration"] == run["metadata"]["generation"]
    # The pass posts its Events just after patching status.
    h.wait(lambda: "CreateJobFailed" in h.events_of(core, namespace, name), 30, "the CreateJobFailed Event")
    assert 'mathtune_reconcile_errors_total{reason="CreateJobFailed"}' in operator.metrics()
    core.delete_namespaced_resource_quota("no-jobs", namespace)
    h.running_pod(core, namespace, f"{name}-prepare", timeout=90)
    run = h.wait_run(custom, namespace, name, lambda r: h.condition(r, "Ready").get("status") == "True",
                     "Ready=True")
    assert len(h.jobs_of(batch, namespace, name)) == 1


def test_ttl_deletes_the_jobs_after_the_run_ends(namespace, apis, operator, volumes):
    core, batch, custom = apis["core"], apis["batch"], apis["custom"]
    name = "shortlived"
    _start(apis, namespace, volumes, name, runPolicy={"ttlSecondsAfterFinished": 2})
    h.finish_stage(core, namespace, f"{name}-prepare", 2, {"stage": "prepare", "ok": False, "error": "bad input"})
    run = h.wait_run(custom, namespace, name, lambda r: r["status"].get("jobsDeletedAt"), "jobsDeletedAt")
    assert run["status"]["phase"] == "Failed"  # results and conditions stay
    h.wait(lambda: not h.jobs_of(batch, namespace, name), 60, "Jobs deleted")
    h.wait(lambda: "JobsDeleted" in h.events_of(core, namespace, name), 30, "the JobsDeleted Event")


def test_an_earlier_runs_spec_configmap_is_never_used(namespace, apis, operator, volumes):
    """The API server holds a ConfigMap named as the new run's spec, owned by something else (an earlier
    run of the same name not yet garbage-collected). The operator's create meets 409, reads the owner,
    and waits, saying why, without a Job that would mount the old recipe; once it is gone, the run
    starts with its own."""
    core, batch, custom = apis["core"], apis["batch"], apis["custom"]
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "earlier-owner"}})
    core.create_namespaced_config_map(namespace, {
        "metadata": {"name": "reused-spec", "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap",
                                                                  "name": "earlier-owner",
                                                                  "uid": owner.metadata.uid}]},
        "data": {"spec.json": "{\"the\": \"old recipe\"}"}})
    _start(apis, namespace, volumes, "reused")
    run = h.wait_run(custom, namespace, "reused",
                     lambda r: h.condition(r, "Ready").get("reason") == "WaitingForOldObject", "the wait")
    assert "ConfigMap reused-spec belongs to an earlier run named reused" in h.condition(run, "Ready")["message"]
    assert h.jobs_of(batch, namespace, "reused") == []
    core.delete_namespaced_config_map("reused-spec", namespace)
    h.wait(lambda: h.jobs_of(batch, namespace, "reused"), 60, "the prepare Job once the old ConfigMap went")
    mine = core.read_namespaced_config_map("reused-spec", namespace)
    assert [o.uid for o in mine.metadata.owner_references] == [run["metadata"]["uid"]]
    assert "old recipe" not in json.dumps(mine.data)
