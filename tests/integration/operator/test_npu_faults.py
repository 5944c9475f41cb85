"""An NPU fault under training, on the real control plane with a real operator
process (the chart's RBAC): the operator reads the node's device-info
ConfigMap, stops the attempt holding the failed NPU, resumes training in a
new attempt, and the status says which device failed, from which checkpoint
training resumed and how many steps were redone.

The training pod is played on a kwok node (as every test here plays stage
pods), so what a device plugin writes for that node comes from the real one:
the test fails an NPU of the real node, whose emulated device plugin
publishes its device-info ConfigMap (tests/integration/node/
test_device_faults.py shows it), and puts that ConfigMap's data under the kwok
node's name, with the pod's huawei.com/AscendReal as that plugin writes it."""
import pytest
from kubernetes import client

from hack.cluster import local
from mathtune_operator import device_health

from . import helpers as h

pytestmark = pytest.mark.integration

HELD, FAILED = "Ascend910-2,Ascend910-3", "Ascend910-3"


def _train_row(custom, namespace, name):
    return h.stage_row(h.get_run(custom, namespace, name), "train")


@pytest.fixture
def device_infos(apis):
    """Device-info ConfigMaps the test publishes in kube-system, removed after."""
    made = []

    def publish(node: str, data: dict) -> None:
        name = device_health.DEVICE_INFO_PREFIX + node
        apis["core"].create_namespaced_config_map("kube-system", {"metadata": {"name": name}, "data": data})
        made.append(name)

    yield publish
    for name in made:
        try:
            apis["core"].delete_namespaced_config_map(name, "kube-system")
        except client.exceptions.ApiException:
            pass


def test_a_failed_npu_stops_training_and_the_next_attempt_resumes_saying_what_it_cost(
        namespace, apis, operator, volumes, npu_failures, device_infos, tmp_path):
    core, batch, custom = apis["core"], apis["batch"], apis["custom"]
    name = "npu"
    h.bind_work_volume(core, namespace, f"{name}-work", volumes)
    h.create_run(custom, namespace, h.run_doc("run-cpu.yaml", name, runPolicy={"backoffLimit": 2}))
    for stage in ("prepare", "tokenize"):
        h.finish_stage(core, namespace, f"{name}-{stage}", 0, h.result(stage))
    first = h.running_pod(core, namespace, f"{name}-train")
    # Training has reached epoch 2, step 5 of 25 (30 steps done) when the NPU fails.
    h.write_pod_log(custom, first, tmp_path / "train.log",
                    ['mathtune-progress {"stage":"train","epoch":2,"epochs":2,"step":5,"steps":25,"loss":2.5}'])
    h.wait_run(custom, namespace, name, lambda r: (r.get("status", {}).get("progress") or {}).get("step") == 5,
               "training's progress in status")
    core.patch_namespaced_pod(first.metadata.name, namespace,
                              {"metadata": {"annotations": {device_health.ANNOTATION_REAL: HELD}}})

    npu_failures(FAILED)
    real = h.wait(lambda: (cm := core.read_namespaced_config_map(
        device_health.DEVICE_INFO_PREFIX + local.REAL_NODE, "kube-system").to_dict())
        and device_health.out_of_service(cm) == {FAILED: "unhealthy"} and cm, 30,
        "the real node's device plugin to report the failed NPU")
    node = first.spec.node_name
    device_infos(node, real["data"])

    row = h.wait(lambda: (r := _train_row(custom, namespace, name)).get("deviceFaults") and r, 60,
                 "the fault in the train stage's row")
    [fault] = row["deviceFaults"]
    assert {k: fault[k] for k in ("node", "pod", "devices", "attempt", "stepAtFault")} == {
        "node": node, "pod": first.metadata.name, "devices": [{"name": FAILED, "why": "unhealthy"}],
        "attempt": 1, "stepAtFault": 30}
    assert row["attempts"] == 2 and f"NPU {FAILED} (unhealthy) of pod {first.metadata.name}" in row["message"]
    h.wait(lambda: "DeviceFault" in h.events_of(core, namespace, name), 30, "the DeviceFault Event")
    h.wait(lambda: f'mathtune_device_faults_total{{node="{node}"}} 1.0' in operator.metrics(), 30,
           "the device-fault metric")

    # Attempt 2: a new Job (the first was stopped whole), counting on, with the retries left.
    second = h.running_pod(core, namespace, f"{name}-train", timeout=120)
    assert second.metadata.name != first.metadata.name
    job = batch.read_namespaced_job(f"{name}-train", namespace)
    assert job.metadata.annotations["mathtune.dev/attempt"] == "2" and job.spec.backoff_limit == 1
    args = second.spec.containers[0].args
    assert args[args.index("--resume") + 1] == "auto"
    # It resumed from epoch 1's save, at step 25: 5 steps were trained again.
    h.podsim.complete_pod(core, namespace, second.metadata.name, 0, h.json.dumps(h.result(
        "train", resumedFrom={"epoch": 1, "checkpoint": "llama3_8b_rank_0-1_25.ckpt", "step": 25})))
    row = h.wait(lambda: (r := _train_row(custom, namespace, name)).get("state") == "Succeeded" and r, 60,
                 "training to succeed")
    [fault] = row["deviceFaults"]
    assert row["attempts"] == 2
    assert {k: fault.get(k) for k in ("resumedFromEpoch", "resumedFromCheckpoint", "resumedFromStep",
                                      "stepsRedone")} == {
        "resumedFromEpoch": 1, "resumedFromCheckpoint": "llama3_8b_rank_0-1_25.ckpt", "resumedFromStep": 25,
        "stepsRedone": 5}
    h.running_pod(core, namespace, f"{name}-merge")
