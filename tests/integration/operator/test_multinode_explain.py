"""Multi-node training as an Indexed Job behind a headless Service, and the
CRD's documentation as kubectl explain shows it."""
import pytest

from hack.cluster import local

from . import helpers as h

pytestmark = pytest.mark.integration

NPU = "huawei.com/Ascend910"


def test_two_node_training_is_an_indexed_job_on_two_ascend_nodes(namespace, apis, operator, volumes):
    core, batch, custom = apis["core"], apis["batch"], apis["custom"]
    name = "twonode"
    h.bind_work_volume(core, namespace, f"{name}-work", volumes)
    doc = h.multi_node_doc(name)
    h.create_run(custom, namespace, doc)
    for stage in ("prepare", "tokenize"):
        h.finish_stage(core, namespace, f"{name}-{stage}", 0, h.result(stage))
    job = h.wait(lambda: batch.read_namespaced_job(f"{name}-train", namespace) if any(
        j.metadata.name == f"{name}-train" for j in h.jobs_of(batch, namespace, name)) else None, 60, "train Job")
    assert job.spec.completion_mode == "Indexed" and job.spec.completions == 2 and job.spec.parallelism == 2
    svc = core.read_namespaced_service(f"{name}-train", namespace)
    assert svc.spec.cluster_ip == "None"

    def both_running():
        pods = [p for p in h.live_pods(core, namespace, f"{name}-train") if p.status.phase == "Running"]
        return pods if len(pods) == 2 else None
    pods = h.wait(both_running, 90, "2 training pods Running")
    # 8 NPUs each: the scheduler must put them on different Ascend nodes.
    assert sorted(p.spec.node_name for p in pods) == ["ascend-0", "ascend-1"]
    by_rank = {p.metadata.annotations["batch.kubernetes.io/job-completion-index"]: p for p in pods}
    for rank, pod in by_rank.items():
        assert pod.spec.subdomain == f"{name}-train" and pod.spec.hostname == f"{name}-train-{rank}"
        c = pod.spec.containers[0]
        assert c.resources.limits[NPU] == "8"
        args = c.args
        assert args[args.index("--master-addr") + 1] == f"{name}-train-0.{name}-train.{namespace}.svc"
        assert args[args.index("--node-rank") + 1] == "$(MATHTUNE_NODE_RANK)"
        env = {e.name: e for e in c.env}
        assert "job-completion-index" in env["MATHTUNE_NODE_RANK"].value_from.field_ref.field_path
    # Rank 1 ends first with its own (partial) result; the run takes rank 0's.
    h.podsim.complete_pod(core, namespace, by_rank["1"].metadata.name, 0,
                          h.json.dumps({"stage": "train", "ok": True, "epochs": 5}))
    h.podsim.complete_pod(core, namespace, by_rank["0"].metadata.name, 0, h.json.dumps(h.result("train")))
    run = h.wait_run(custom, namespace, name, lambda r: h.stage_row(r, "train").get("state") == "Succeeded",
                     "train Succeeded")
    assert run["status"]["results"]["trainableParams"] == 3407872


def test_kubectl_explain_reads_well(kubeconfig, crd):
    out = h.wait(lambda: (lambda p: p.stdout if p.returncode == 0 else None)(
        local.kubectl("explain", "mathfinetune.spec.lora", kubeconfig=kubeconfig, check=False)),
        30, "kubectl explain to know the CRD")
    assert "LoRA: low-rank adapters" in out
    for field in ("rank", "alpha", "dropout", "targetModules"):
        assert f"  {field}\t" in out, out
    assert "Default: 8." in out and "Immutable once the run exists." in out
    top = local.kubectl("explain", "mathfinetune.spec", kubeconfig=kubeconfig).stdout
    for field in ("runPolicy", "scheduling", "storage", "evaluation", "resources", "profile"):
        assert field in top


def _two_node_run(core, custom, namespace, volumes, name):
    h.bind_work_volume(core, namespace, f"{name}-work", volumes)
    doc = h.multi_node_doc(name)
    doc["spec"]["runPolicy"] = {"backoffLimit": 1}
    h.create_run(custom, namespace, doc)
    for stage in ("prepare", "tokenize"):
        h.finish_stage(core, namespace, f"{name}-{stage}", 0, h.result(stage))


def _ranks_running(core, namespace, job):
    def both():
        pods = [p for p in h.live_pods(core, namespace, job) if p.status.phase == "Running"]
        return {p.metadata.annotations["batch.kubernetes.io/job-completion-index"]: p for p in pods} \
            if len(pods) == 2 else None
    return h.wait(both, 90, f"both ranks of {job} Running")


def test_a_failed_rank_restarts_every_rank_as_the_next_attempt(namespace, apis, operator, volumes):
    """One rank fails: the Job fails at once (no rank is replaced alone), the
    operator stops every rank and starts attempt 2, which resumes; when
    attempt 2 fails too, backoffLimit 1 is used up and the run fails."""
    core, batch, custom = apis["core"], apis["batch"], apis["custom"]
    name = "restart"
    _two_node_run(core, custom, namespace, volumes, name)
    first = _ranks_running(core, namespace, f"{name}-train")
    first_job = batch.read_namespaced_job(f"{name}-train", namespace)
    assert first_job.metadata.annotations["mathtune.dev/attempt"] == "1"
    assert first_job.spec.backoff_limit_per_index == 0 and first_job.spec.max_failed_indexes == 0

    h.podsim.complete_pod(core, namespace, first["1"].metadata.name, 1, "rank 1: HCCL timeout on link 3")

    def second_attempt():
        try:
            job = batch.read_namespaced_job(f"{name}-train", namespace)
        except h.ApiException:
            return None
        return job if job.metadata.annotations.get("mathtune.dev/attempt") == "2" else None
    job = h.wait(second_attempt, 90, "the train Job of attempt 2")
    second = _ranks_running(core, namespace, f"{name}-train")
    # Both ranks are new pods; rank 0 had not failed and was stopped too.
    old_uids = {p.metadata.uid for p in first.values()}
    assert not old_uids & {p.metadata.uid for p in second.values()}
    gone = h.wait(lambda: not [p for p in core.list_namespaced_pod(namespace).items
                               if p.metadata.uid in old_uids] or None, 60, "attempt 1's pods gone")
    assert gone
    args = second["0"].spec.containers[0].args
    assert args[args.index("--resume") + 1] == "auto"
    assert job.metadata.uid != first_job.metadata.uid
    run = h.wait_run(custom, namespace, name, lambda r: h.stage_row(r, "train").get("attempts") == 2
                     and h.stage_row(r, "train").get("state") == "Running", "train Running, attempt 2")
    assert "attempt 1 failed: rank 1: HCCL timeout on link 3" in h.stage_row(run, "train")["message"]
    h.wait(lambda: "StageRetrying" in h.events_of(core, namespace, name) or None, 30, "a StageRetrying Event")

    h.podsim.complete_pod(core, namespace, second["0"].metadata.name, 1, "rank 0: loss is NaN")
    run = h.wait_phase(custom, namespace, name, "Failed", timeout=90)
    row = h.stage_row(run, "train")
    assert row["attempts"] == 2 and "failed after 2 attempts" in row["message"], row
    assert "rank 0: loss is NaN" in row["message"]


# Volcano's own PodGroup CRD cannot be had here (the Go module proxy refuses
# volcano.sh/volcano), so this stand-in declares the same API type, without a
# schema: what the operator creates is checked by this test, not by Volcano.
POD_GROUP_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "podgroups.scheduling.volcano.sh"},
    "spec": {"group": "scheduling.volcano.sh", "scope": "Namespaced",
             "names": {"plural": "podgroups", "singular": "podgroup", "kind": "PodGroup", "shortNames": ["pg"]},
             "versions": [{"name": "v1beta1", "served": True, "storage": True, "subresources": {"status": {}},
                           "schema": {"openAPIV3Schema": {"type": "object",
                                                          "x-kubernetes-preserve-unknown-fields": True}}}]}}


@pytest.fixture
def pod_group_crd(k8s_api):
    ext = h.client.ApiextensionsV1Api(k8s_api)
    try:
        ext.create_custom_resource_definition(POD_GROUP_CRD)
    except h.ApiException as exc:
        if exc.status != 409:
            raise
    h.wait(lambda: any(c.type == "Established" and c.status == "True" for c in
                       ext.read_custom_resource_definition("podgroups.scheduling.volcano.sh").status.conditions or []),
           30, "the PodGroup CRD established")


def test_under_volcano_the_ranks_join_one_pod_group_owned_by_their_job(namespace, apis, operator, volumes,
                                                                       pod_group_crd):
    core, batch, custom = apis["core"], apis["batch"], apis["custom"]
    name = "gang"
    h.bind_work_volume(core, namespace, f"{name}-work", volumes)
    doc = h.multi_node_doc(name)
    h.create_run(custom, namespace, doc)
    h.finish_stage(core, namespace, f"{name}-prepare", 0, h.result("prepare"))
    h.running_pod(core, namespace, f"{name}-tokenize")
    # Scheduling applies to the stages not started yet: training only (no
    # Volcano runs here to place the data stages' pods).
    h.patch_run(custom, namespace, name, {"spec": {"scheduling": {"schedulerName": "volcano", "queue": "research"}}})
    h.finish_stage(core, namespace, f"{name}-tokenize", 0, h.result("tokenize"))

    def group():
        try:
            return custom.get_namespaced_custom_object("scheduling.volcano.sh", "v1beta1", namespace, "podgroups",
                                                       f"{name}-train")
        except h.ApiException:
            return None
    pg = h.wait(group, 60, "the train Job's PodGroup")
    job = batch.read_namespaced_job(f"{name}-train", namespace)
    owner = pg["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("Job", job.metadata.uid, True)
    assert pg["spec"]["minMember"] == 2 and pg["spec"]["queue"] == "research"
    assert pg["spec"]["minResources"][NPU] == "16"
    template = job.spec.template
    assert template.spec.scheduler_name == "volcano"
    assert template.metadata.annotations["scheduling.k8s.io/group-name"] == f"{name}-train"
    assert template.metadata.annotations["scheduling.volcano.sh/queue-name"] == "research"
    h.wait_run(custom, namespace, name, lambda r: h.stage_row(r, "train").get("podGroup") == job.metadata.uid,
               "the train row to record its PodGroup")
    # Both ranks' pods exist, in the group, and wait for Volcano (not here): none is placed.
    def rank_pods():
        pods = core.list_namespaced_pod(namespace, label_selector=f"job-name={name}-train").items
        return pods if len(pods) == 2 else None
    pods = h.wait(rank_pods, 60, "the train Job's two rank pods")
    for pod in pods:
        assert pod.metadata.annotations["scheduling.k8s.io/group-name"] == f"{name}-train"
        assert pod.spec.scheduler_name == "volcano" and pod.spec.node_name is None, pod.metadata.name
