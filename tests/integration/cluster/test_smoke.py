"""The local control plane is a real Kubernetes: scheduling, taints, RBAC, versions."""

import pytest
from kubernetes import client

from hack.cluster import local
from tests.waiting import wait_for as _wait

pytestmark = pytest.mark.integration

NPU = "huawei.com/Ascend910"
NPU_TOLERATION = {"key": NPU, "operator": "Exists", "effect": "NoSchedule"}
# These Jobs are about scheduling on kwok's simulated nodes (nothing runs
# there): they tolerate kwok's taint and select its nodes, never the real one.
KWOK_TOLERATION = {"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}


def _job(name, npus=None, tolerate=True):
    container = {"name": "work", "image": "busybox", "command": ["true"]}
    if npus is not None:
        container["resources"] = {"limits": {NPU: str(npus)}, "requests": {NPU: str(npus)}}
    spec = {"restartPolicy": "Never", "containers": [container], "nodeSelector": {"type": "kwok"},
            "tolerations": [KWOK_TOLERATION]}
    if tolerate:
        spec["tolerations"].append(NPU_TOLERATION)
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"backoffLimit": 0, "template": {"spec": spec}}}




def _pods_of(core, ns, job):
    return core.list_namespaced_pod(ns, label_selector=f"job-name={job}").items


def _unschedulable(core, ns, pod_name):
    pod = core.read_namespaced_pod(pod_name, ns)
    for cond in pod.status.conditions or []:
        if cond.type == "PodScheduled" and cond.status == "False" and cond.reason == "Unschedulable":
            return cond
    return None


def test_versions_are_real(k8s_api):
    info = client.VersionApi(k8s_api).get_code()
    assert info.git_version == local.VERSIONS["KUBE_VERSION"]
    out = local.kubectl("version", "--client", "-o", "json").stdout
    assert local.VERSIONS["KUBE_VERSION"] in out
    import subprocess
    helm = subprocess.run([str(local.HELM), "version", "--short"], capture_output=True, text=True, check=True).stdout
    assert helm.startswith(local.VERSIONS["HELM_VERSION"])


def test_ascend_nodes_offer_eight_npus(k8s_api):
    nodes = client.CoreV1Api(k8s_api).list_node().items
    simulated = [n for n in nodes if (n.metadata.labels or {}).get("type") == "kwok"]
    ascend = [n for n in simulated if (n.metadata.labels or {}).get("accelerator") == "huawei-Ascend910"]
    cpu = [n for n in simulated if NPU not in (n.status.allocatable or {})]
    assert len(ascend) >= 2 and len(cpu) >= 1
    for node in ascend:
        assert node.status.allocatable[NPU] == "8"
        assert any(t.key == NPU and t.effect == "NoSchedule" for t in node.spec.taints or [])
        ready = {c.type: c.status for c in node.status.conditions}
        assert ready.get("Ready") == "True"
    for node in simulated:
        assert any(t.key == "kwok.x-k8s.io/node" and t.effect == "NoSchedule" for t in node.spec.taints or []), \
            f"{node.metadata.name}: real workloads must not land on a simulated node"


def test_job_with_four_npus_runs_on_an_ascend_node_and_completes(k8s_api, namespace):
    batch, core = client.BatchV1Api(k8s_api), client.CoreV1Api(k8s_api)
    batch.create_namespaced_job(namespace, _job("npu4", npus=4))
    pod = _wait(lambda: [p for p in _pods_of(core, namespace, "npu4") if p.spec.node_name], what="pod scheduled")[0]
    node = core.read_node(pod.spec.node_name)
    assert node.metadata.labels.get("accelerator") == "huawei-Ascend910"
    _wait(lambda: (batch.read_namespaced_job_status("npu4", namespace).status.succeeded or 0) == 1,
          what="job npu4 Complete")


def test_job_with_sixteen_npus_stays_pending_unschedulable(k8s_api, namespace):
    batch, core = client.BatchV1Api(k8s_api), client.CoreV1Api(k8s_api)
    batch.create_namespaced_job(namespace, _job("npu16", npus=16))
    pod = _wait(lambda: _pods_of(core, namespace, "npu16"), what="pod created")[0]
    cond = _wait(lambda: _unschedulable(core, namespace, pod.metadata.name), what="Unschedulable condition")
    assert f"Insufficient {NPU}" in cond.message
    assert core.read_namespaced_pod(pod.metadata.name, namespace).status.phase == "Pending"


def test_pod_without_toleration_never_lands_on_an_npu_node(k8s_api, namespace):
    core = client.CoreV1Api(k8s_api)
    # Pinned to simulated NPU nodes but without the NPU toleration: must stay unschedulable.
    core.create_namespaced_pod(namespace, {
        "metadata": {"name": "no-toleration"},
        "spec": {"nodeSelector": {"accelerator": "huawei-Ascend910", "type": "kwok"},
                 "tolerations": [KWOK_TOLERATION], "containers": [{"name": "c", "image": "busybox"}]},
    })
    cond = _wait(lambda: _unschedulable(core, namespace, "no-toleration"), what="Unschedulable condition")
    assert "untolerated taint" in cond.message
    # Pods without the NPU toleration all go to the simulated CPU nodes.
    for i in range(6):
        core.create_namespaced_pod(namespace, {"metadata": {"name": f"plain-{i}"}, "spec": {
            "nodeSelector": {"type": "kwok"}, "tolerations": [KWOK_TOLERATION],
            "containers": [{"name": "c", "image": "busybox"}]}})
    def all_placed():
        plain = [p for p in core.list_namespaced_pod(namespace).items if p.metadata.name.startswith("plain-")]
        return plain if len(plain) == 6 and all(p.spec.node_name for p in plain) else None

    placed = _wait(all_placed, what="6 plain pods scheduled")
    for pod in placed:
        labels = core.read_node(pod.spec.node_name).metadata.labels
        assert labels.get("accelerator") != "huawei-Ascend910", pod.spec.node_name


def test_rbac_is_enforced(k8s_api, namespace):
    """A ServiceAccount with no role may not list pods: authorization is real."""
    core, auth = client.CoreV1Api(k8s_api), client.AuthorizationV1Api(k8s_api)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "nobody"}})
    review = auth.create_subject_access_review({
        "spec": {"user": f"system:serviceaccount:{namespace}:nobody",
                 "resourceAttributes": {"namespace": namespace, "verb": "list", "resource": "pods"}}})
    assert review.status.allowed is False


def test_a_deleted_running_job_pod_goes_away(k8s_api, namespace):
    """As with a kubelet: the pod is stopped, the Job controller drops its
    tracking finalizer, and the pod is gone (not stuck Terminating)."""
    batch, core = client.BatchV1Api(k8s_api), client.CoreV1Api(k8s_api)
    job = _job("held")
    job["spec"]["template"]["metadata"] = {"labels": {"mathtune.dev/stage": "smoke"}}  # kwok never completes it
    batch.create_namespaced_job(namespace, job)
    pod = _wait(lambda: [p for p in _pods_of(core, namespace, "held") if p.status.phase == "Running"],
                what="pod Running")[0]
    core.delete_namespaced_pod(pod.metadata.name, namespace)

    def gone():
        try:
            core.read_namespaced_pod(pod.metadata.name, namespace)
            return False
        except client.exceptions.ApiException as exc:
            return exc.status == 404

    _wait(gone, what="deleted pod removed")
