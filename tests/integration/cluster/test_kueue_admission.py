"""Kueue admits a multi-node training Job whole or not at all.

The Jobs are shaped like the operator's multi-node training: Indexed, one pod
per node, each pod asking for a whole Ascend node (8 NPUs), created
suspended and labelled with a LocalQueue. Kueue reserves quota for all pods
at once and, through topology-aware scheduling (the pod template's
podset-required-topology annotation), picks a node for each; until then the
Job stays suspended and has no pod at all.

Capacity is freed by deleting a Kueue-managed Job of the same ClusterQueue
or cohort: Kueue v0.19 retries a waiting Workload only then, not when a pod
it does not manage ends (kueue#8653, fixed in v0.20) nor when a queue
outside the cohort frees a node.
"""
import pytest
from kubernetes import client

from tests.waiting import wait_for

pytestmark = pytest.mark.integration

NPU = "huawei.com/Ascend910"
KUEUE = {"group": "kueue.x-k8s.io", "version": "v1beta2"}
# Only kwok's simulated Ascend nodes: the tests tolerate kwok's taint, and
# the pods are labelled as stage pods so kwok keeps them Running (kwok.yaml).
TOLERATIONS = [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"},
               {"key": NPU, "operator": "Exists", "effect": "NoSchedule"}]


def _training_job(name, queue, pods=2, node=None):
    selector = {"accelerator": "huawei-Ascend910", "type": "kwok"}
    if node:
        selector["kubernetes.io/hostname"] = node
    container = {"name": "train", "image": "busybox", "command": ["true"],
                 "resources": {"requests": {NPU: "8"}, "limits": {NPU: "8"}}}
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": name, "labels": {"kueue.x-k8s.io/queue-name": queue}},
            "spec": {"suspend": True, "completionMode": "Indexed", "completions": pods, "parallelism": pods,
                     "backoffLimit": 0,
                     "template": {"metadata": {"labels": {"mathtune.dev/stage": "train"},
                                               "annotations": {"kueue.x-k8s.io/podset-required-topology": "type"}},
                                  "spec": {"restartPolicy": "Never", "containers": [container],
                                           "nodeSelector": selector, "tolerations": TOLERATIONS}}}}


def _occupants(core, custom):
    """What holds the Ascend nodes: pods on them, and Workloads admitted (those
    of a namespace being deleted may hold nodes without any pod)."""
    pods = [f"pod {p.metadata.namespace}/{p.metadata.name}" for node in ("ascend-0", "ascend-1")
            for p in core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}").items
            if p.status.phase not in ("Succeeded", "Failed")]
    workloads = [f"workload {w['metadata']['namespace']}/{w['metadata']['name']}"
                 for w in custom.list_cluster_custom_object(**KUEUE, plural="workloads")["items"]
                 if w.get("status", {}).get("admission")]
    return pods + workloads


@pytest.fixture
def api(k8s_api, kueue, namespace):
    """The APIs, once the Ascend nodes are free (other tests use them too).
    Afterwards the test's Jobs are deleted and their Workloads waited for, so
    that the next test finds the nodes free."""
    batch, core, custom = (client.BatchV1Api(k8s_api), client.CoreV1Api(k8s_api),
                           client.CustomObjectsApi(k8s_api))
    try:
        wait_for(lambda: not _occupants(core, custom), timeout=180, what="ascend-0 and ascend-1 free")
    except AssertionError as error:
        raise AssertionError(f"{error}; still held by: {', '.join(_occupants(core, custom))}") from None
    yield batch, core, custom
    batch.delete_collection_namespaced_job(namespace, propagation_policy="Background")
    wait_for(lambda: not custom.list_namespaced_custom_object(**KUEUE, namespace=namespace, plural="workloads")["items"],
             what=f"the Workloads of {namespace} gone")


def _local_queue(custom, namespace, name, cluster_queue):
    custom.create_namespaced_custom_object(**KUEUE, namespace=namespace, plural="localqueues", body={
        "apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "LocalQueue",
        "metadata": {"name": name}, "spec": {"clusterQueue": cluster_queue}})
    return name


@pytest.fixture
def queue(api, namespace):
    """LocalQueue `npu` of the test's namespace, on npu-cluster-queue (kueue.sh)."""
    return _local_queue(api[2], namespace, "npu", "npu-cluster-queue")


def _workload(custom, batch, namespace, job):
    """A Job's Workload: Kueue labels it with the Job's uid (and owns it by the Job)."""
    uid = batch.read_namespaced_job(job, namespace).metadata.uid
    items = custom.list_namespaced_custom_object(**KUEUE, namespace=namespace, plural="workloads",
                                                 label_selector=f"kueue.x-k8s.io/job-uid={uid}")["items"]
    return items[0] if items else None


def _condition(workload, kind):
    for cond in (workload or {}).get("status", {}).get("conditions", []):
        if cond["type"] == kind:
            return cond
    return None


def _waiting(api, namespace, job):
    """The Job's Workload once Kueue has tried and failed to reserve quota for it."""
    batch, _, custom = api
    workload = _workload(custom, batch, namespace, job)
    cond = _condition(workload, "QuotaReserved")
    return workload if cond and cond["status"] == "False" and cond.get("message") else None


def _bound_pods(core, namespace, job):
    return [p for p in core.list_namespaced_pod(namespace, label_selector=f"job-name={job}").items
            if p.spec.node_name]


def _running_on_all(api, namespace, job, pods):
    """Node names of the Job's pods once all `pods` of them are bound."""
    bound = _bound_pods(api[1], namespace, job)
    return sorted(p.spec.node_name for p in bound) if len(bound) == pods else None


def _assert_holds_nothing(api, namespace, job, workload):
    batch, core, _ = api
    assert batch.read_namespaced_job(job, namespace).spec.suspend is True
    assert core.list_namespaced_pod(namespace, label_selector=f"job-name={job}").items == []
    assert "admission" not in workload.get("status", {}), workload["status"]


def _delete_job(batch, namespace, job):
    batch.delete_namespaced_job(job, namespace, propagation_policy="Background")


@pytest.fixture
def small_queue(api, namespace):
    """A ClusterQueue with one node's NPUs (8), neither borrowing nor lending,
    and a LocalQueue `small` on it. In npu-cluster-queue's cohort: what it
    frees, Kueue offers to the Workloads waiting there."""
    custom = api[2]
    name = f"small-{namespace}"[:63]
    custom.create_cluster_custom_object(**KUEUE, plural="clusterqueues", body={
        "apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "ClusterQueue", "metadata": {"name": name},
        "spec": {"cohortName": "ascend910",
                 "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                 "resourceGroups": [{"coveredResources": [NPU], "flavors": [{"name": "ascend910", "resources": [
                     {"name": NPU, "nominalQuota": 8, "borrowingLimit": 0, "lendingLimit": 0}]}]}]}})
    yield _local_queue(custom, namespace, "small", name)
    custom.delete_cluster_custom_object(**KUEUE, plural="clusterqueues", name=name)


def test_a_two_node_job_binds_no_pod_until_both_nodes_are_free(api, namespace, queue, small_queue):
    """The blocker comes through another ClusterQueue: npu-cluster-queue has
    quota for all 16 NPUs, so what refuses `train` is the placement of both
    pods at once (one node is taken), not quota."""
    batch, core, custom = api
    batch.create_namespaced_job(namespace, _training_job("blocker", small_queue, pods=1, node="ascend-0"))
    assert wait_for(lambda: _running_on_all(api, namespace, "blocker", 1), what="blocker on ascend-0") == ["ascend-0"]

    batch.create_namespaced_job(namespace, _training_job("train", queue))
    workload = wait_for(lambda: _waiting(api, namespace, "train"), what="train's Workload refused")
    message = _condition(workload, "QuotaReserved")["message"]
    print(f"\n[a] Workload {workload['metadata']['name']} QuotaReserved=False: {message}")
    assert 'topology "npu-topology" allows to fit only 1 out of 2 pod(s)' in message
    _assert_holds_nothing(api, namespace, "train", workload)

    _delete_job(batch, namespace, "blocker")
    nodes = wait_for(lambda: _running_on_all(api, namespace, "train", 2), what="both train pods bound")
    assert nodes == ["ascend-0", "ascend-1"]
    assert _condition(_workload(custom, batch, namespace, "train"), "Admitted")["status"] == "True"


def test_b_of_two_competing_jobs_one_runs_whole_the_other_waits_whole(api, namespace, queue):
    batch, core, custom = api
    for job in ("first", "second"):
        batch.create_namespaced_job(namespace, _training_job(job, queue))

    def one_runs_one_waits():
        running = [j for j in ("first", "second") if _running_on_all(api, namespace, j, 2)]
        waiting = [j for j in ("first", "second") if _waiting(api, namespace, j)]
        return (running[0], waiting[0]) if len(running) == 1 and len(waiting) == 1 else None

    winner, loser = wait_for(one_runs_one_waits, what="one Job running on both nodes, the other refused")
    workload = _waiting(api, namespace, loser)
    print(f"\n[b] Workload {workload['metadata']['name']} QuotaReserved=False: "
          f"{_condition(workload, 'QuotaReserved')['message']}")
    assert _running_on_all(api, namespace, winner, 2) == ["ascend-0", "ascend-1"]
    _assert_holds_nothing(api, namespace, loser, workload)

    _delete_job(batch, namespace, winner)
    assert wait_for(lambda: _running_on_all(api, namespace, loser, 2),
                    what=f"{loser} bound after {winner} deleted") == ["ascend-0", "ascend-1"]


def test_c_a_job_larger_than_its_queues_quota_stays_suspended_and_says_why(api, namespace, small_queue):
    batch, _, _ = api
    batch.create_namespaced_job(namespace, _training_job("too-big", small_queue))
    workload = wait_for(lambda: _waiting(api, namespace, "too-big"), what="too-big's Workload refused")
    message = _condition(workload, "QuotaReserved")["message"]
    print(f"\n[c] Workload {workload['metadata']['name']} QuotaReserved=False: {message}")
    assert "insufficient quota" in message and NPU in message
    _assert_holds_nothing(api, namespace, "too-big", workload)
