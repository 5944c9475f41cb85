"""Runs under Kueue (spec.scheduling.localQueue), with the real Kueue
controller of hack/cluster/kueue.sh: multi-node training starts whole or not
at all, and a run Kueue does not admit says why in its status.

Stage pods land on kwok's simulated Ascend nodes, as in the other operator
tests; Kueue's ClusterQueue npu-cluster-queue holds their 16 NPUs.
"""
import pytest

from . import helpers as h

pytestmark = pytest.mark.integration

NPU = "huawei.com/Ascend910"
KUEUE = {"group": "kueue.x-k8s.io", "version": "v1beta2"}
# All-or-nothing placement of the ranks within one domain of the `type` node
# label (kwok's nodes); a real cluster names its rack or block label here.
TOPOLOGY = {"kueue.x-k8s.io/podset-required-topology": "type"}


def _local_queue(custom, namespace, name, cluster_queue):
    custom.create_namespaced_custom_object(**KUEUE, namespace=namespace, plural="localqueues", body={
        "apiVersion": "kueue.x-k8s.io/v1beta2", "kind": "LocalQueue", "metadata": {"name": name},
        "spec": {"clusterQueue": cluster_queue}})


def _ascend_nodes_free(core):
    return not [p for node in ("ascend-0", "ascend-1")
                for p in core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={node}").items
                if p.status.phase not in ("Succeeded", "Failed")]


@pytest.fixture
def queued(apis, namespace, kueue, operator, volumes):
    """LocalQueue `npu` (on npu-cluster-queue) in the test's namespace, once
    the Ascend nodes are free of other tests' pods."""
    h.wait(lambda: _ascend_nodes_free(apis["core"]), 180, "ascend-0 and ascend-1 free")
    _local_queue(apis["custom"], namespace, "npu", "npu-cluster-queue")
    return apis


def _two_node_run(apis, namespace, volumes, name, nodes=2):
    core, custom = apis["core"], apis["custom"]
    h.bind_work_volume(core, namespace, f"{name}-work", volumes)
    doc = h.multi_node_doc(name, nodes)
    doc["spec"]["scheduling"]["localQueue"] = "npu"
    doc["spec"]["podTemplates"] = [{"stages": ["train"], "annotations": TOPOLOGY}]
    h.create_run(custom, namespace, doc)
    for stage in ("prepare", "tokenize"):
        # Each stage Job is admitted by Kueue first: its pod appears then.
        h.finish_stage(core, namespace, f"{name}-{stage}", 0, h.result(stage))


def _queued_message(custom, namespace, name, needle):
    def check(run):
        ready = h.condition(run, "Ready")
        return ready.get("reason") == "Queued" and needle in ready.get("message", "")
    try:
        return h.condition(h.wait_run(custom, namespace, name, check, f"run {name} queued: {needle}"), "Ready")
    except AssertionError as error:
        run = h.get_run(custom, namespace, name)
        raise AssertionError(f"{error}; Ready: {h.condition(run, 'Ready')}; stages: "
                             f"{(run.get('status') or {}).get('stages')}") from None


def _show(namespace, when):
    """What a user sees (printed; pytest shows it with -s or on failure)."""
    out = h.local.kubectl("get", "mft,jobs,pods,workloads", "-n", namespace, "-o", "wide", check=False)
    print(f"\n--- {when}: kubectl get mft,jobs,pods,workloads\n{out.stdout}{out.stderr}")


def _ranks_on(core, namespace, job):
    pods = [p for p in h.live_pods(core, namespace, job) if p.spec.node_name]
    return sorted(p.spec.node_name for p in pods) if len(pods) == 2 else None


def test_a_two_node_run_starts_whole_once_both_nodes_are_free(queued, namespace, volumes):
    """One Ascend node is taken by a Kueue-admitted Job of the same queue;
    training binds no rank (and holds nothing) until it is gone, then both."""
    core, batch, custom = queued["core"], queued["batch"], queued["custom"]
    blocker = {"apiVersion": "batch/v1", "kind": "Job",
               "metadata": {"name": "blocker", "labels": {"kueue.x-k8s.io/queue-name": "npu"}},
               "spec": {"suspend": True, "template": {"metadata": {"labels": {"mathtune.dev/stage": "train"}}, "spec": {
                   "restartPolicy": "Never", "nodeSelector": {"kubernetes.io/hostname": "ascend-0"},
                   "tolerations": [h.KWOK_TOLERATION, {"key": NPU, "operator": "Exists", "effect": "NoSchedule"}],
                   "containers": [{"name": "c", "image": "busybox", "resources": {
                       "requests": {NPU: "8"}, "limits": {NPU: "8"}}}]}}}}
    batch.create_namespaced_job(namespace, blocker)
    h.running_pod(core, namespace, "blocker")

    _two_node_run(queued, namespace, volumes, "whole")
    # The blocker holds 8 of the queue's 16 NPUs: Kueue reserves for both
    # ranks at once or for neither.
    ready = _queued_message(custom, namespace, "whole", "insufficient unused quota for huawei.com/Ascend910 in "
                                                        "flavor ascend910, 8 more needed")
    assert ready["status"] == "False" and "queued in Kueue LocalQueue npu" in ready["message"]
    run = h.get_run(custom, namespace, "whole")
    assert run["status"]["phase"] == "Running" and h.stage_row(run, "train")["state"] == "Pending"
    assert h.live_pods(core, namespace, "whole-train") == [], "no rank may hold a node while it waits"
    assert "Queued" in h.events_of(core, namespace, "whole")
    _show(namespace, "training queued while ascend-0 is taken")

    batch.delete_namespaced_job("blocker", namespace, propagation_policy="Background")
    assert h.wait(lambda: _ranks_on(core, namespace, "whole-train"), 90, "both ranks bound") == \
        ["ascend-0", "ascend-1"]
    h.wait_run(custom, namespace, "whole", lambda r: h.stage_row(r, "train").get("state") == "Running"
               and h.condition(r, "Ready").get("status") == "True", "train Running once admitted")
    _show(namespace, "both nodes free: both ranks running")


def test_a_run_above_its_queues_quota_stays_pending_and_says_why(queued, namespace, volumes):
    """Three nodes' training asks for 24 NPUs; the ClusterQueue has 16."""
    custom = queued["custom"]
    _two_node_run(queued, namespace, volumes, "toobig", nodes=3)
    ready = _queued_message(custom, namespace, "toobig", "insufficient quota for huawei.com/Ascend910")
    assert "(24) > maximum capacity (16)" in ready["message"], ready["message"]
    assert h.live_pods(queued["core"], namespace, "toobig-train") == []


def test_of_two_competing_two_node_runs_one_trains_whole_and_the_other_waits_whole(queued, namespace, volumes):
    core, custom = queued["core"], queued["custom"]
    for name in ("one", "two"):
        _two_node_run(queued, namespace, volumes, name)

    def one_trains_one_waits():
        training = [n for n in ("one", "two") if _ranks_on(core, namespace, f"{n}-train")]
        waiting = [n for n in ("one", "two") if h.condition(h.get_run(custom, namespace, n), "Ready").get("reason")
                   == "Queued"]
        return (training[0], waiting[0]) if len(training) == 1 and len(waiting) == 1 else None
    winner, loser = h.wait(one_trains_one_waits, 90, "one run training on both nodes, the other queued")
    assert h.live_pods(core, namespace, f"{loser}-train") == [], "the waiting run holds no node"
    _queued_message(custom, namespace, loser, "insufficient unused quota for huawei.com/Ascend910 in flavor "
                                              "ascend910, 16 more needed")

    # The winner's training ends (rank 1, then rank 0 with the result): its
    # quota goes back, and the other run's ranks start, both.
    ranks = {p.metadata.annotations["batch.kubernetes.io/job-completion-index"]: p
             for p in h.live_pods(core, namespace, f"{winner}-train")}
    h.podsim.complete_pod(core, namespace, ranks["1"].metadata.name, 0, h.json.dumps({"stage": "train", "ok": True}))
    h.podsim.complete_pod(core, namespace, ranks["0"].metadata.name, 0, h.json.dumps(h.result("train")))
    assert h.wait(lambda: _ranks_on(core, namespace, f"{loser}-train"), 90, f"{loser}'s ranks bound") == \
        ["ascend-0", "ascend-1"]
