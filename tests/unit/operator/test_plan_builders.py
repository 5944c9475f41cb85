"""Stage plan and Job builders: pure functions over the examples."""
import copy
import json

from mathtune_api import parse_spec
from mathtune_operator import builders, names, plan
from mathtune_operator.resource import Run
from tests import examples

from .conftest import run_from

NPU = "huawei.com/Ascend910"


def test_plan_follows_the_spec(seed000):
    assert "export" not in seed000["spec"]
    assert plan.stages(parse_spec(seed000["spec"])) == list(plan.ALL_STAGES[:-1])
    exported = copy.deepcopy(seed000["spec"])
    exported["export"] = {"formats": ["peft"]}
    assert plan.stages(parse_spec(exported)) == list(plan.ALL_STAGES) and plan.ALL_STAGES[-1] == "export"
    spec = copy.deepcopy(seed000["spec"])
    spec["evaluation"]["enabled"] = False
    spec["prediction"]["enabled"] = False
    assert plan.stages(parse_spec(spec)) == ["prepare", "tokenize", "train", "merge", "report"]


def test_train_job_on_ascend(seed000):
    job = builders.job(Run.of(seed000), "train")
    pod = job["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert job["metadata"]["name"] == "seed000-train"
    assert c["command"] == ["mathtune-pipeline"]
    assert c["args"][:7] == ["train", "--spec", "/etc/mathtune/spec.json", "--run-dir", "/data/runs/seed000",
                             "--result-file", "/dev/termination-log"]
    assert c["args"][7:] == ["--resume", "auto"]
    assert c["resources"]["limits"][NPU] == "4" and c["resources"]["requests"][NPU] == "4"
    assert c["terminationMessagePath"] == "/dev/termination-log"
    assert c["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert pod["restartPolicy"] == "Never"
    assert pod["nodeSelector"] == {"accelerator": "huawei-Ascend910"}
    assert {"key": NPU, "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    vols = {v["name"]: v for v in pod["volumes"]}
    assert vols["work"]["persistentVolumeClaim"]["claimName"] == "seed000-work"
    assert vols["shm"]["emptyDir"] == {"medium": "Memory"}
    assert vols["ascend-driver"]["hostPath"]["path"] == "/usr/local/Ascend/driver"
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert mounts["ascend-driver"]["readOnly"] is True and mounts["shm"]["mountPath"] == "/dev/shm"
    assert mounts["spec"]["mountPath"] == "/etc/mathtune"
    assert job["metadata"]["labels"][names.LABEL_STAGE] == "train"
    assert job["spec"]["template"]["metadata"]["labels"][names.LABEL_STAGE] == "train"
    owner = job["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "MathFinetune" and owner["uid"] == "uid-1" and owner["controller"] is True
    assert job["spec"]["backoffLimit"] == 2
    rule = job["spec"]["podFailurePolicy"]["rules"][0]
    assert rule["action"] == "FailJob" and rule["onExitCodes"]["values"] == [2]
    assert "completionMode" not in job["spec"]


def test_data_stages_ask_for_no_npus_but_stay_on_ascend_nodes(seed000):
    for stage in ("prepare", "tokenize", "merge", "report"):
        pod = builders.job(Run.of(seed000), stage)["spec"]["template"]["spec"]
        resources = pod["containers"][0]["resources"]
        assert NPU not in resources["requests"] and "limits" not in resources, stage
        assert not any(v["name"] == "ascend-driver" for v in pod["volumes"])
        assert pod["nodeSelector"]["accelerator"] == "huawei-Ascend910"
    # evaluate/predict: the merged checkpoint on one card, even where training
    # split the model four ways (modelParallel 4 in seed 000).
    for stage in ("evaluate", "predict"):
        c = builders.job(Run.of(seed000), stage)["spec"]["template"]["spec"]["containers"][0]
        assert c["resources"]["limits"][NPU] == "1"


def test_cpu_profile_has_no_npu_anything(cpu_run):
    run = copy.deepcopy(cpu_run)
    run["spec"]["resources"]["requestNpusOnCpu"] = False
    for stage in plan.stages(parse_spec(run["spec"])):
        job = builders.job(Run.of(run), stage)
        text = json.dumps(job)
        assert NPU not in text and "Ascend" not in text, stage
        pod = job["spec"]["template"]["spec"]
        assert "nodeSelector" not in pod and pod["tolerations"] == []


def test_cpu_profile_training_asks_the_device_plugin_for_npus_only_when_told(cpu_run):
    """The example sets requestNpusOnCpu (the local node emulates NPUs): only
    train asks, for npusPerNode, tolerating the NPU nodes' taint; nothing else
    of the Ascend profile comes along (no node selector, no driver mount)."""
    assert cpu_run["spec"]["resources"]["requestNpusOnCpu"] is True
    for stage in plan.stages(parse_spec(cpu_run["spec"])):
        pod = builders.job(Run.of(cpu_run), stage)["spec"]["template"]["spec"]
        c = pod["containers"][0]
        if stage == "train":
            assert c["resources"] == {"limits": {NPU: "2"}, "requests": {NPU: "2", "cpu": "500m", "memory": "2Gi"}}
            # Where the NPUs are, their taint is.
            assert pod["tolerations"] == [{"key": NPU, "operator": "Exists", "effect": "NoSchedule"}]
        else:
            assert NPU not in c["resources"]["requests"] and "limits" not in c["resources"], stage
            assert pod["tolerations"] == [], stage
        assert "nodeSelector" not in pod, stage
        assert not any(v["name"] == "ascend-driver" for v in pod["volumes"]), stage


def test_stage_pods_meet_pod_security_restricted(cpu_run, seed000):
    """What Pod Security "restricted" checks, field by field (the kubelet then
    enforces it: tests/integration/node)."""
    for run in (cpu_run, seed000):
        for stage in plan.stages(parse_spec(run["spec"])):
            pod = builders.job(Run.of(run), stage)["spec"]["template"]["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True
            assert pod["securityContext"]["runAsUser"] == 10001
            assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
            c = pod["containers"][0]
            assert c["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                            "capabilities": {"drop": ["ALL"]}}
            # The only writable paths: the work volume and an emptyDir that
            # holds $HOME and is the working directory.
            scratch = {m["mountPath"] for m in c["volumeMounts"] if m["name"] == "scratch"}
            assert scratch == {"/tmp"} and c["workingDir"] == "/tmp"
            assert {"name": "HOME", "value": "/tmp/home"} in c["env"]


def test_multi_node_training_is_an_indexed_job_with_a_headless_service(seed000):
    run = copy.deepcopy(seed000)
    run["spec"]["resources"].update(nodes=2, npusPerNode=8,
                                    parallel={"dataParallel": 4, "modelParallel": 4, "pipelineStage": 1,
                                              "microBatchNum": 1})
    job = builders.job(Run.of(run), "train")
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == 2 and job["spec"]["parallelism"] == 2
    pod = job["spec"]["template"]["spec"]
    assert pod["subdomain"] == "seed000-train"
    c = pod["containers"][0]
    args = c["args"]
    assert args[args.index("--node-rank") + 1] == "$(MATHTUNE_NODE_RANK)"
    assert args[args.index("--master-addr") + 1] == "seed000-train-0.seed000-train.ns1.svc"
    assert args[args.index("--master-port") + 1] == "8118"
    env = {e["name"]: e for e in c["env"]}
    assert env["MATHTUNE_NODE_RANK"]["valueFrom"]["fieldRef"]["fieldPath"] == \
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    svc = builders.headless_service(Run.of(run))
    assert svc["spec"]["clusterIP"] == "None" and svc["metadata"]["name"] == "seed000-train"
    assert svc["spec"]["selector"] == {names.LABEL_RUN: "seed000", names.LABEL_STAGE: "train"}
    assert builders.persistent_volume_claim(Run.of(run))["spec"]["accessModes"] == ["ReadWriteMany"]
    # Other stages stay single pods.
    assert "completionMode" not in builders.job(Run.of(run), "prepare")["spec"]


def test_scheduling_and_run_policy_reach_the_pod(seed000):
    run = copy.deepcopy(seed000)
    run["spec"]["scheduling"].update(
        nodeSelector={"pool": "a"}, priorityClassName="high", schedulerName="volcano", queue="research",
        tolerations=[{"key": "x", "operator": "Exists", "effect": "NoSchedule"}])
    run["spec"]["runPolicy"].update(backoffLimit=5, activeDeadlineSeconds=3600)
    job = builders.job(Run.of(run), "train", suspend=True)
    pod = job["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"accelerator": "huawei-Ascend910", "pool": "a"}
    assert pod["priorityClassName"] == "high" and pod["schedulerName"] == "volcano"
    assert job["spec"]["template"]["metadata"]["annotations"]["scheduling.volcano.sh/queue-name"] == "research"
    assert {"key": "x", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert job["spec"]["backoffLimit"] == 5 and job["spec"]["activeDeadlineSeconds"] == 3600
    assert job["spec"]["suspend"] is True


def test_claim_and_spec_config_map(seed000):
    pvc = builders.persistent_volume_claim(Run.of(seed000))
    assert pvc["metadata"]["name"] == "seed000-work"
    assert "ownerReferences" not in pvc["metadata"], "the work volume must outlive the run"
    assert pvc["spec"]["resources"]["requests"]["storage"] == "200Gi"
    named = copy.deepcopy(seed000)
    named["spec"]["storage"]["pvcName"] = "shared-data"
    assert builders.persistent_volume_claim(Run.of(named)) is None
    vols = builders.job(Run.of(named), "prepare")["spec"]["template"]["spec"]["volumes"]
    assert vols[0]["persistentVolumeClaim"]["claimName"] == "shared-data"
    cm = builders.config_map(Run.of(seed000))
    doc = json.loads(cm["data"]["spec.json"])
    assert doc["metadata"] == {"name": "seed000", "namespace": "ns1", "uid": "uid-1"}
    assert doc["spec"]["lora"]["rank"] == 8 and doc["spec"]["data"]["sample"]["quotas"]["mass"] == 1000
    assert cm["metadata"]["ownerReferences"][0]["name"] == "seed000"


def test_every_example_renders_every_stage():
    for path in examples.RUNS:
        run = run_from(path)
        for stage in plan.stages(parse_spec(run["spec"])):
            job = builders.job(Run.of(run), stage)
            assert job["metadata"]["name"] == f"{run['metadata']['name']}-{stage}"
            assert len(job["metadata"]["name"]) <= 52
