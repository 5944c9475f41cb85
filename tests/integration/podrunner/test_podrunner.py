"""The local pod runner against the real API server: labelled Job pods really
run here, their volumes are local directories, their logs are served through
kwok, and their end reaches the Job controller as a kubelet would report it."""
import time

import pytest
from kubernetes import client

from hack.cluster import podrunner
from tests.waiting import wait_for as _wait

pytestmark = pytest.mark.integration




@pytest.fixture
def runner(k8s_api, namespace, tmp_path):
    # Scoped to the test's namespace: other tests complete their own pods.
    r = podrunner.PodRunner(k8s_api, tmp_path / "root", namespace=namespace, poll_seconds=0.5).start()
    yield r
    r.stop()


def _job(name, script, stage="prepare", volumes=(), mounts=(), env=(), policy="File", backoff=0):
    container = {"name": "stage", "image": "mathtune/pipeline-cpu:0.1.0", "command": ["sh", "-c", script],
                 "env": list(env), "volumeMounts": list(mounts), "terminationMessagePolicy": policy}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"backoffLimit": backoff, "template": {
                "metadata": {"labels": {"mathtune.dev/stage": stage, "mathtune.dev/run": "r1"}},
                "spec": {"restartPolicy": "Never", "containers": [container], "volumes": list(volumes)}}}}


def _pod(core, ns, job):
    pods = core.list_namespaced_pod(ns, label_selector=f"job-name={job}").items
    return pods[0] if pods else None


def _terminated(core, ns, job):
    pod = _pod(core, ns, job)
    if pod and pod.status.container_statuses and pod.status.container_statuses[0].state.terminated:
        return pod
    return None


def test_stage_pod_runs_with_its_env_volumes_and_termination_message(k8s_api, namespace, runner):
    core, batch = client.CoreV1Api(k8s_api), client.BatchV1Api(k8s_api)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "r1-spec"},
                                                  "data": {"spec.json": '{"profile": "cpu"}'}})
    core.create_namespaced_persistent_volume_claim(namespace, {
        "metadata": {"name": "r1-work"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    script = ('echo "hello from $POD_NAME"; cat /etc/mathtune/spec.json; echo; '
              'mkdir -p /data/runs/r1 && echo written > /data/runs/r1/out.txt; '
              'echo "{\\"stage\\": \\"prepare\\", \\"ok\\": true}" > /dev/termination-log')
    batch.create_namespaced_job(namespace, _job(
        "r1-prepare", script,
        volumes=[{"name": "spec", "configMap": {"name": "r1-spec"}},
                 {"name": "work", "persistentVolumeClaim": {"claimName": "r1-work"}}],
        mounts=[{"name": "spec", "mountPath": "/etc/mathtune", "readOnly": True},
                {"name": "work", "mountPath": "/data"}],
        env=[{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]))
    _wait(lambda: (batch.read_namespaced_job_status("r1-prepare", namespace).status.succeeded or 0) == 1,
          what="Job r1-prepare Complete")
    pod = _pod(core, namespace, "r1-prepare")
    assert pod.status.phase == "Succeeded"
    term = pod.status.container_statuses[0].state.terminated
    assert term.exit_code == 0 and term.reason == "Completed"
    assert term.message.strip() == '{"stage": "prepare", "ok": true}'
    # The log is served by kwok from the runner's file: what the operator reads.
    out = core.read_namespaced_pod_log(pod.metadata.name, namespace, container="stage")
    assert f"hello from {pod.metadata.name}" in out and '{"profile": "cpu"}' in out
    # The claim is a local directory that outlives the pod.
    assert (runner.claim_path(namespace, "r1-work") / "runs" / "r1" / "out.txt").read_text() == "written\n"
    assert core.read_namespaced_persistent_volume_claim("r1-work", namespace).status.phase == "Bound"


def test_failing_stage_reports_exit_code_and_log_tail(k8s_api, namespace, runner):
    core, batch = client.CoreV1Api(k8s_api), client.BatchV1Api(k8s_api)
    batch.create_namespaced_job(namespace, _job("r1-train", "echo 'data: bad row 7' >&2; exit 2",
                                                stage="train", policy="FallbackToLogsOnError"))
    pod = _wait(lambda: _terminated(core, namespace, "r1-train"), what="train pod terminated")
    term = pod.status.container_statuses[0].state.terminated
    assert pod.status.phase == "Failed"
    assert term.exit_code == 2 and term.reason == "Error"
    assert "data: bad row 7" in term.message
    _wait(lambda: any(c.type == "Failed" and c.status == "True"
                      for c in batch.read_namespaced_job_status("r1-train", namespace).status.conditions or []),
          what="Job r1-train Failed")


def test_deleted_pod_has_its_process_stopped(k8s_api, namespace, runner, tmp_path):
    core, batch = client.CoreV1Api(k8s_api), client.BatchV1Api(k8s_api)
    marker = tmp_path / "still-running"
    batch.create_namespaced_job(namespace, _job("r1-slow", f"while true; do date > {marker}; sleep 0.2; done"))
    _wait(lambda: marker.exists(), what="slow pod started")
    pod = _pod(core, namespace, "r1-slow")
    batch.delete_namespaced_job("r1-slow", namespace, propagation_policy="Background")
    core.delete_namespaced_pod(pod.metadata.name, namespace, grace_period_seconds=0)

    def stopped():
        before = marker.stat().st_mtime
        time.sleep(1)
        return marker.stat().st_mtime == before

    _wait(stopped, timeout=30, what="process stopped after the pod was deleted")


def test_unlabelled_pods_are_left_to_kwok(k8s_api, namespace, runner, tmp_path):
    core, batch = client.CoreV1Api(k8s_api), client.BatchV1Api(k8s_api)
    marker = tmp_path / "ran"
    job = _job("plain", f"touch {marker}")
    del job["spec"]["template"]["metadata"]["labels"]["mathtune.dev/stage"]
    batch.create_namespaced_job(namespace, job)
    _wait(lambda: (batch.read_namespaced_job_status("plain", namespace).status.succeeded or 0) == 1,
          what="kwok completes the unlabelled Job")
    assert not marker.exists(), "the runner must only run MathFinetune stage pods"


def test_claims_are_provisioned_and_their_data_deleted_with_them(k8s_api, namespace, runner):
    core = client.CoreV1Api(k8s_api)
    core.create_namespaced_persistent_volume_claim(namespace, {
        "metadata": {"name": "scratch"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    _wait(lambda: core.read_namespaced_persistent_volume_claim("scratch", namespace).status.phase == "Bound",
          what="claim bound")
    path = runner.claim_path(namespace, "scratch")
    assert path.is_relative_to(runner.root) and path.is_dir()
    (path / "checkpoint.ckpt").write_text("x")
    core.delete_namespaced_persistent_volume_claim("scratch", namespace)
    _wait(lambda: not path.exists(), what="released volume's data removed")
