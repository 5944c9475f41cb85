"""The local cluster's real node (hack/node): pods run in containers under a
kubelet, which enforces their securityContext, serves their logs and reports
their termination messages, and a device plugin the kubelet really talks to
allocates the emulated NPUs."""
import pytest
from kubernetes import client

from hack.cluster import local
from tests.waiting import wait_for

pytestmark = pytest.mark.integration

NPU = "huawei.com/Ascend910"
ON_THE_REAL_NODE = {"mathtune.dev/node": "real"}


def _base_image() -> str:
    return local.image_refs()["PYTHON_BASE_IMAGE"]


def _pod(name: str, script: str, npus: int = 0, read_only_root: bool = True) -> dict:
    container = {
        "name": "main", "image": _base_image(), "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", script],
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": read_only_root,
                            "capabilities": {"drop": ["ALL"]}},
    }
    if npus:
        container["resources"] = {"limits": {NPU: str(npus)}, "requests": {NPU: str(npus)}}
    return {"metadata": {"name": name}, "spec": {
        "restartPolicy": "Never", "nodeSelector": ON_THE_REAL_NODE, "terminationGracePeriodSeconds": 1,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container]}}


def _log(core, ns, name) -> str:
    """The container's log as the kubelet serves it. (kubernetes 36.0.2's
    read_namespaced_pod_log returns str(bytes), "b'...'", so read it raw.)"""
    return core.read_namespaced_pod_log(name, ns, _preload_content=False).data.decode()


def _phase(core, ns, name, *phases):
    pod = core.read_namespaced_pod(name, ns)
    return pod if pod.status.phase in phases else None


def test_the_real_node_is_ready_with_eight_npus_from_the_device_plugin(k8s_api):
    node = client.CoreV1Api(k8s_api).read_node(local.REAL_NODE)
    assert {c.type: c.status for c in node.status.conditions}["Ready"] == "True"
    assert node.status.allocatable[NPU] == "8" and node.status.capacity[NPU] == "8"
    assert node.status.node_info.container_runtime_version.startswith("containerd://")
    assert node.status.node_info.kubelet_version == local.VERSIONS["KUBE_VERSION"]
    # No taint: ordinary workloads (the operator, cpu-profile stages) land here.
    assert not node.spec.taints


def test_the_kubelet_enforces_uid_and_read_only_root_and_reports_termination_message(k8s_api, namespace):
    core = client.CoreV1Api(k8s_api)
    core.create_namespaced_pod(namespace, _pod("guarded", (
        "echo uid=$(id -u); "
        "touch /written-to-root 2>&1 || true; "
        "echo 'the result, as a stage writes it' > /dev/termination-log; exit 3")))
    pod = wait_for(lambda: _phase(core, namespace, "guarded", "Failed"), 120, "pod guarded to fail (exit 3)")
    assert pod.spec.node_name == local.REAL_NODE
    terminated = pod.status.container_statuses[0].state.terminated
    assert terminated.exit_code == 3
    assert terminated.message == "the result, as a stage writes it\n"
    # Served by the kubelet through the API server, as `kubectl logs` reads it.
    log = _log(core, namespace, "guarded")
    assert "uid=10001" in log
    assert "Read-only file system" in log, log


def test_a_pod_gets_the_npus_the_kubelet_allocated_and_a_second_waits_for_them(k8s_api, namespace):
    core = client.CoreV1Api(k8s_api)
    core.create_namespaced_pod(namespace, _pod("four", "echo ids=$ASCEND_VISIBLE_DEVICES; sleep 600", npus=4))
    wait_for(lambda: _phase(core, namespace, "four", "Running"), 120, "pod four Running")
    line = wait_for(lambda: [ln for ln in _log(core, namespace, "four").splitlines()
                             if ln.startswith("ids=")], 30, "pod four's log")[0]
    ids = line[len("ids="):].split(",")
    assert len(ids) == 4 and len(set(ids)) == 4 and set(ids) <= {str(i) for i in range(8)}, line

    # Eight more do not fit beside the four held: the scheduler keeps it Pending.
    core.create_namespaced_pod(namespace, _pod("eight", "echo ids=$ASCEND_VISIBLE_DEVICES", npus=8))

    def unschedulable():
        pod = core.read_namespaced_pod("eight", namespace)
        for cond in pod.status.conditions or []:
            if cond.type == "PodScheduled" and cond.reason == "Unschedulable":
                return cond
        return None

    cond = wait_for(unschedulable, 60, "pod eight Unschedulable")
    assert f"Insufficient {NPU}" in cond.message
    assert core.read_namespaced_pod("eight", namespace).status.phase == "Pending"

    # The four are given back when their pod goes; then the eight get all of them.
    core.delete_namespaced_pod("four", namespace, grace_period_seconds=0)
    wait_for(lambda: _phase(core, namespace, "eight", "Succeeded"), 180, "pod eight to run once NPUs are free")
    log = _log(core, namespace, "eight")
    assert sorted(log.strip()[len("ids="):].split(","), key=int) == [str(i) for i in range(8)], log


def test_a_dynamic_claim_is_provisioned_on_the_node_and_writable_by_uid_10001(k8s_api, namespace):
    core = client.CoreV1Api(k8s_api)
    core.create_namespaced_persistent_volume_claim(namespace, {
        "metadata": {"name": "work"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    pod = _pod("writer", "echo kept > /data/file && cat /data/file")
    pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "work", "mountPath": "/data"}]
    pod["spec"]["volumes"] = [{"name": "work", "persistentVolumeClaim": {"claimName": "work"}}]
    core.create_namespaced_pod(namespace, pod)
    wait_for(lambda: _phase(core, namespace, "writer", "Succeeded"), 120, "pod writer to succeed")
    claim = core.read_namespaced_persistent_volume_claim("work", namespace)
    assert claim.status.phase == "Bound" and claim.spec.storage_class_name == "mathtune-local"
    assert _log(core, namespace, "writer").strip() == "kept"


def test_the_ascend_image_runs_the_stage_command_through_its_cann_wrapper(k8s_api, namespace):
    """images/pipeline-ascend/Dockerfile, built on the local base for want of
    CANN (hack/images/build.sh): `command: [mathtune-pipeline, ...]`, as stage
    pods give it, finds the wrapper first on PATH, which runs the real CLI."""
    core = client.CoreV1Api(k8s_api)
    pod = _pod("ascend-image", "command -v mathtune-pipeline; mathtune-pipeline --help")
    pod["spec"]["containers"][0]["image"] = local.image_refs()["PIPELINE_ASCEND_NOCANN_IMAGE"]
    pod["spec"]["containers"][0]["env"] = [{"name": "HOME", "value": "/tmp/home"}]
    pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "tmp", "mountPath": "/tmp"}]
    pod["spec"]["volumes"] = [{"name": "tmp", "emptyDir": {}}]
    core.create_namespaced_pod(namespace, pod)
    done = wait_for(lambda: _phase(core, namespace, "ascend-image", "Succeeded", "Failed"), 120,
                    "the Ascend image's pod to end")
    log = _log(core, namespace, "ascend-image")
    assert done.status.phase == "Succeeded", log
    assert log.splitlines()[0] == "/opt/mathtune/wrap/mathtune-pipeline", log
    assert "usage: mathtune-pipeline" in log


# hack/node/common.sh: the node's own containerd, apart from any the machine runs.
NODE_CONTAINERD = "/run/mathtune-node/containerd.sock"


def test_the_node_keeps_no_image_that_only_its_id_still_names():
    """The CRI plugin names every image it has seen by its ID (sha256:...).
    When hack/node/up.sh drops an earlier build's tag, that name alone would
    keep the build's content and unpacked snapshots (GiBs a pipeline image)
    on disk for good: up.sh drops such names too."""
    import subprocess
    from pathlib import Path

    if not Path(NODE_CONTAINERD).exists():
        pytest.fail(f"the local node's containerd ({NODE_CONTAINERD}) is not running", pytrace=False)
    listing = subprocess.run(["ctr", "--address", NODE_CONTAINERD, "--namespace", "k8s.io", "images", "ls"],
                             capture_output=True, text=True, check=True).stdout.splitlines()[1:]
    rows = [line.split()[:3] for line in listing if line.strip()]
    named = {target for ref, _, target in rows if not ref.startswith("sha256:")}
    orphans = [ref for ref, _, target in rows if ref.startswith("sha256:") and target not in named]
    assert named and not orphans, f"images only their ID names: {orphans}"
