"""spec.podTemplates reach the stage pods as docs/pod-template.md says, over
per-stage resource defaults; multi-node training is retried whole and, under
Volcano, scheduled as one gang."""
import copy

import pytest

from mathtune_api import parse_spec
from mathtune_operator import builders, names, pod_template, schedulers
from mathtune_operator.resource import Run

NPU = "huawei.com/Ascend910"


def _pod(run, stage):
    job = builders.job(Run.of(run), stage)
    return job["spec"]["template"], job["spec"]["template"]["spec"]["containers"][0]


@pytest.fixture
def templated(seed000):
    run = copy.deepcopy(seed000)
    run["spec"]["scheduling"]["tolerations"] = [{"key": "a", "operator": "Exists", "effect": "NoSchedule"}]
    run["spec"]["podTemplates"] = [
        {"envFrom": [{"secretRef": {"name": "s3-credentials"}}],
         "env": [{"name": "REGION", "value": "cn-1"}, {"name": "DEBUG", "value": "0"}],
         "labels": {"team": "math"}, "annotations": {"note": "all"},
         "serviceAccountName": "stages", "imagePullSecrets": [{"name": "registry"}],
         "volumes": [{"name": "models", "nfs": {"server": "10.0.0.5", "path": "/models"}}],
         "volumeMounts": [{"name": "models", "mountPath": "/models", "readOnly": True}]},
        {"stages": ["train"], "env": [{"name": "DEBUG", "value": "1"}],
         "envFrom": [{"configMapRef": {"name": "hccl"}}],
         "labels": {"ring-controller.atlas": "ascend-910b", "team": "math-train"},
         "resources": {"requests": {"cpu": 64}, "limits": {"memory": "512Gi"}},
         "nodeSelector": {"pool": "train"},
         "tolerations": [{"key": "b", "operator": "Exists", "effect": "NoSchedule"}],
         "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
             {"topologyKey": "kubernetes.io/hostname"}]}}},
    ]
    return run


def test_a_template_without_stages_reaches_every_stage(templated):
    for stage in ("prepare", "merge", "report"):
        meta, c = _pod(templated, stage)
        assert c["envFrom"] == [{"secretRef": {"name": "s3-credentials"}}], stage
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert env["REGION"] == "cn-1" and env["DEBUG"] == "0" and env["MATHTUNE_STAGE"] == stage
        assert meta["metadata"]["labels"]["team"] == "math"
        assert meta["metadata"]["labels"][names.LABEL_STAGE] == stage
        assert meta["metadata"]["annotations"] == {"note": "all"}
        assert meta["spec"]["serviceAccountName"] == "stages"
        assert meta["spec"]["imagePullSecrets"] == [{"name": "registry"}]
        assert {"name": "models", "mountPath": "/models", "readOnly": True} in c["volumeMounts"]
        assert meta["spec"]["nodeSelector"] == {"accelerator": "huawei-Ascend910"}
        assert "affinity" not in meta["spec"]


def test_a_stage_template_goes_over_the_shared_one(templated):
    meta, c = _pod(templated, "train")
    env = [e["name"] for e in c["env"]]
    assert env.count("DEBUG") == 1 and {e["name"]: e.get("value") for e in c["env"]}["DEBUG"] == "1"
    # The operator's variables come first and stay.
    assert env[:2] == ["MATHTUNE_RUN", "MATHTUNE_STAGE"]
    assert c["envFrom"] == [{"secretRef": {"name": "s3-credentials"}}, {"configMapRef": {"name": "hccl"}}]
    labels = meta["metadata"]["labels"]
    assert labels["team"] == "math-train" and labels["ring-controller.atlas"] == "ascend-910b"
    assert meta["spec"]["nodeSelector"] == {"accelerator": "huawei-Ascend910", "pool": "train"}
    keys = [t["key"] for t in meta["spec"]["tolerations"]]
    assert keys == ["a", "b", NPU]
    assert "podAntiAffinity" in meta["spec"]["affinity"]
    # Resources key by key: the user's cpu, the default memory request, the
    # user's memory limit, and the NPUs from spec.resources in both.
    assert c["resources"]["requests"] == {"cpu": "64", "memory": "76Gi", NPU: "4"}
    assert c["resources"]["limits"] == {"memory": "512Gi", NPU: "4"}
    # The operator's volumes come first: a template never replaces them.
    assert [v["name"] for v in meta["spec"]["volumes"]][:4] == ["work", "spec", "shm", "scratch"]


def test_default_requests_follow_the_stage_and_the_model(seed000, cpu_run):
    # llama3-8b in bf16 is 16 GB (15 GiB): every training rank (4 here) reads it whole, 4 GiB beside.
    assert pod_template.default_requests(parse_spec(seed000["spec"]), "train") == {"cpu": "16", "memory": "76Gi"}
    assert pod_template.default_requests(parse_spec(seed000["spec"]), "merge") == {"cpu": "4", "memory": "19Gi"}
    assert pod_template.default_requests(parse_spec(seed000["spec"]), "evaluate") == {"cpu": "8", "memory": "23Gi"}
    llama7b = copy.deepcopy(seed000["spec"])
    llama7b["model"]["family"] = "llama-7b"
    assert pod_template.default_requests(parse_spec(llama7b), "merge")["memory"] == "17Gi"
    # The cpu profile's tiny model shares a small node.
    assert pod_template.default_requests(parse_spec(cpu_run["spec"]), "prepare") == {"cpu": "250m", "memory": "512Mi"}
    assert pod_template.default_requests(parse_spec(cpu_run["spec"]), "train") == {"cpu": "500m", "memory": "2Gi"}


def test_a_limit_below_a_default_request_brings_the_request_down(seed000):
    run = copy.deepcopy(seed000)
    run["spec"]["podTemplates"] = [{"stages": ["merge"], "resources": {"limits": {"memory": "8Gi", "cpu": "2"}}}]
    _, c = _pod(run, "merge")
    assert c["resources"]["requests"] == {"cpu": "2", "memory": "8Gi"}
    # A request the user gave is theirs: the API server judges it.
    run["spec"]["podTemplates"][0]["resources"]["requests"] = {"memory": "16Gi"}
    _, c = _pod(run, "merge")
    assert c["resources"]["requests"]["memory"] == "16Gi"


def _two_nodes(seed000, scheduler=""):
    run = copy.deepcopy(seed000)
    run["spec"]["resources"].update(nodes=2, npusPerNode=8,
                                    parallel={"dataParallel": 4, "modelParallel": 4, "pipelineStage": 1,
                                              "microBatchNum": 1})
    run["spec"]["scheduling"].update(schedulerName=scheduler, queue="research" if scheduler else "")
    return run


def test_multi_node_training_fails_whole_at_its_first_failed_rank(seed000):
    job = builders.job(Run.of(_two_nodes(seed000)), "train", attempt=3)
    spec = job["spec"]
    assert spec["backoffLimitPerIndex"] == 0 and spec["maxFailedIndexes"] == 0
    assert "backoffLimit" not in spec
    rules = spec["podFailurePolicy"]["rules"]
    assert [r["action"] for r in rules] == ["FailJob"], "a preempted rank fails the attempt too"
    assert job["metadata"]["annotations"][names.ANNOTATION_ATTEMPT] == "3"
    # Single-pod stages keep the Job controller's own retries.
    prepare = builders.job(Run.of(_two_nodes(seed000)), "prepare")
    assert prepare["spec"]["backoffLimit"] == 2 and names.ANNOTATION_ATTEMPT not in prepare["metadata"]["annotations"]


JOB = {"metadata": {"name": "seed000-train", "uid": "job-uid-1"}}


def test_under_volcano_multi_node_training_is_one_gang(seed000):
    run = _two_nodes(seed000, "volcano")
    meta, _ = _pod(run, "train")
    assert meta["metadata"]["annotations"][names.ANNOTATION_POD_GROUP] == "seed000-train"
    assert schedulers.needs_pod_group(parse_spec(run["spec"]), "train")
    group = schedulers.pod_group(Run.of(run), "train", JOB)
    assert group["kind"] == "PodGroup" and group["apiVersion"] == "scheduling.volcano.sh/v1beta1"
    assert group["spec"]["minMember"] == 2 and group["spec"]["queue"] == "research"
    # Both ranks' worth: 2 x (8 NPUs, 32 cpu, 8 x (15 + 4) GiB).
    assert group["spec"]["minResources"] == {NPU: "16", "cpu": "64", "memory": "304Gi"}
    # Owned by its Job: each attempt gets a fresh group, and deleting the Job
    # needs no grant on jobs/finalizers.
    owner = group["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "Job" and owner["uid"] == "job-uid-1" and owner["controller"] is True
    assert owner["blockOwnerDeletion"] is False
    # Single-pod stages are not grouped (Volcano gives each its own group).
    assert not schedulers.needs_pod_group(parse_spec(run["spec"]), "prepare")
    prepare, _ = _pod(run, "prepare")
    assert names.ANNOTATION_POD_GROUP not in prepare["metadata"].get("annotations", {})
    # Without Volcano there is no gang to join.
    plain, _ = _pod(_two_nodes(seed000), "train")
    assert names.ANNOTATION_POD_GROUP not in plain["metadata"].get("annotations", {})


def _mind_cluster(seed000):
    run = copy.deepcopy(seed000)
    run["spec"]["scheduling"].update(schedulerName="volcano", mindCluster={
        "enabled": True, "acceleratorType": "module-910b-8", "chip": "ascend-910b", "faultScheduling": "grace"})
    return run


def test_mind_cluster_mode_puts_every_npu_stage_in_a_group_with_its_labels(seed000):
    run = _mind_cluster(seed000)
    for stage, npus in (("train", "4"), ("evaluate", "1"), ("predict", "1")):
        meta, c = _pod(run, stage)
        labels = meta["metadata"]["labels"]
        assert labels["ring-controller.atlas"] == "ascend-910b" and labels["fault-scheduling"] == "grace", stage
        assert meta["spec"]["nodeSelector"]["accelerator-type"] == "module-910b-8"
        assert meta["metadata"]["annotations"][names.ANNOTATION_POD_GROUP] == f"seed000-{stage}"
        # The chips Volcano's Ascend plugin chose, in the variable the stage reads.
        env = {e["name"]: e for e in c["env"]}
        assert env["ASCEND_VISIBLE_DEVICES"]["valueFrom"]["fieldRef"]["fieldPath"] == \
            "metadata.annotations['huawei.com/Ascend910']"
        group = schedulers.pod_group(Run.of(run), stage, {"metadata": {"name": f"seed000-{stage}", "uid": "u"}})
        # The plugin finds a job's NPUs only in its PodGroup's minResources.
        assert group["spec"]["minMember"] == 1 and group["spec"]["minResources"][NPU] == npus
        assert group["metadata"]["labels"]["ring-controller.atlas"] == "ascend-910b"
    # Stages without NPUs are untouched: no group, no MindCluster labels.
    for stage in ("prepare", "tokenize", "merge", "report"):
        meta, c = _pod(run, stage)
        assert not schedulers.needs_pod_group(parse_spec(run["spec"]), stage)
        assert "ring-controller.atlas" not in meta["metadata"]["labels"]
        assert "accelerator-type" not in meta["spec"]["nodeSelector"]
        assert "ASCEND_VISIBLE_DEVICES" not in {e["name"] for e in c["env"]}
    # Off (the default): the plain device plugin's pods, as before.
    meta, c = _pod(seed000, "train")
    assert "ring-controller.atlas" not in meta["metadata"]["labels"]
    assert "ASCEND_VISIBLE_DEVICES" not in {e["name"] for e in c["env"]}
