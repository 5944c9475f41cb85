"""NPU faults as Ascend clusters report them: the device-info ConfigMap read
as MindCluster documents it, and a reconcile pass that stops a training
attempt whose device failed and resumes it (against the in-memory stand-in
of test_reconcile_status; the real API server and device plugin are in
tests/integration/node/test_device_faults.py)."""
import json

import pytest
from prometheus_client import CollectorRegistry

from mathtune_operator import device_health, progress
from mathtune_operator.metrics import Metrics

from .conftest import schema
from .test_reconcile_status import RESULTS, Fake, _declared, step

# The device-info ConfigMap's data as MindCluster's manual shows it (the
# "manually separated chip" procedure of its scheduling guide), typed from
# the page: seven chips healthy, Ascend910-0 separated by an administrator.
MANUAL_SAMPLE = {
    "DeviceInfoCfg": '{"DeviceInfo":{"DeviceList":{"huawei.com/Ascend910":"Ascend910-1,Ascend910-2,Ascend910-3,'
                     'Ascend910-4,Ascend910-5,Ascend910-6,Ascend910-7","huawei.com/Ascend910-Fault":"[]",'
                     '"huawei.com/Ascend910-NetworkUnhealthy":"","huawei.com/Ascend910-Unhealthy":""},'
                     '"UpdateTime":1718702470},"CheckCode":"4f00cf1d220da26a8fdbeb5ba163a751d4b264c48b81d22149257e272ae3b413"}',
    "ManuallySeparateNPU": "Ascend910-0",
}


def _device_info(unhealthy="", network=""):
    inner = {"DeviceList": {"huawei.com/Ascend910": "Ascend910-0,Ascend910-1",
                            "huawei.com/Ascend910-Unhealthy": unhealthy,
                            "huawei.com/Ascend910-NetworkUnhealthy": network,
                            "huawei.com/Ascend910-Fault": "[]"}, "UpdateTime": 1}
    return {"metadata": {"name": "mindx-dl-deviceinfo-npu-1", "namespace": "kube-system"},
            "data": {"DeviceInfoCfg": json.dumps({"DeviceInfo": inner, "CheckCode": "x"})}}


def test_the_manuals_sample_reads_as_one_separated_chip():
    assert device_health.out_of_service({"data": MANUAL_SAMPLE}) == {"Ascend910-0": "manually separated"}


def test_unhealthy_and_network_unhealthy_chips_are_out_of_service():
    found = device_health.out_of_service(_device_info(unhealthy="Ascend910-3", network="Ascend910-5, Ascend910-6"))
    assert found == {"Ascend910-3": "unhealthy", "Ascend910-5": "network unhealthy",
                     "Ascend910-6": "network unhealthy"}


def test_a_garbled_configmap_is_no_news_not_every_chip_failing():
    assert device_health.out_of_service({"data": {"DeviceInfoCfg": '{"DeviceInfo": '}}) == {}
    assert device_health.out_of_service({"data": {"DeviceInfoCfg": '["a list"]'}}) == {}
    assert device_health.out_of_service(None) == {}


def test_only_device_info_configmaps_keep_their_data():
    other = {"metadata": {"name": "kube-root-ca.crt", "namespace": "kube-system"}, "data": {"ca.crt": "PEM"}}
    assert device_health.trim(other) == {"metadata": {"name": "kube-root-ca.crt", "namespace": "kube-system"}}
    assert device_health.node_of("mindx-dl-deviceinfo-npu-1") == "npu-1"
    assert device_health.node_of("mindx-dl-deviceinfo-") is None and device_health.node_of("other") is None


@pytest.fixture
def world(cpu_run):
    return cpu_run, Fake(), Metrics(CollectorRegistry()), progress.Throttle(0)


def _to_training(run, fake, metrics, throttle, devices="Ascend910-2,Ascend910-3"):
    """Run the stages before train; the train pod then holds `devices` on node npu-1."""
    step(run, fake, metrics, throttle)
    for stage in ("prepare", "tokenize"):
        fake.finish(f"run-cpu-{stage}", 0, json.dumps({"stage": stage, "ok": True, **RESULTS[stage]}))
        step(run, fake, metrics, throttle)
    pod = fake.pods["run-cpu-train"][0]
    pod["metadata"]["annotations"] = {"huawei.com/AscendReal": devices}
    pod["spec"] = {"nodeName": "npu-1"}
    # Training had reached epoch 2, step 5 of 25: 30 steps done.
    fake.logs["run-cpu-train-0"] = 'mathtune-progress {"epoch":2,"epochs":2,"step":5,"steps":25,"loss":2.5}\n'
    step(run, fake, metrics, throttle)
    return pod


def _train_row(run):
    return next(r for r in run["status"]["stages"] if r["name"] == "train")


def test_a_failed_npu_stops_the_attempt_and_the_next_resumes_saying_what_it_cost(world):
    run, fake, metrics, throttle = world
    _to_training(run, fake, metrics, throttle)
    fake.device_infos["npu-1"] = _device_info(unhealthy="Ascend910-1")  # a chip the pod does not hold
    out = step(run, fake, metrics, throttle)
    assert "run-cpu-train" in fake.jobs and "DeviceFault" not in [e.reason for e in out.events]

    fake.device_infos["npu-1"] = _device_info(unhealthy="Ascend910-3")
    out = step(run, fake, metrics, throttle, now=1010.0)
    assert "run-cpu-train" not in fake.jobs  # every rank stopped
    row = _train_row(run)
    assert row["state"] == "Retrying" and row["attempts"] == 2
    assert "Ascend910-3 (unhealthy) of pod run-cpu-train-0 on node npu-1" in row["message"]
    assert "attempt 2 of 2 resumes from the last checkpoint" in row["message"]
    [fault] = row["deviceFaults"]
    assert fault == {"node": "npu-1", "pod": "run-cpu-train-0", "devices": [{"name": "Ascend910-3", "why": "unhealthy"}],
                     "attempt": 1, "detectedAt": fault["detectedAt"], "stepAtFault": 30}
    assert [e.reason for e in out.events] == ["DeviceFault"]
    assert 'mathtune_device_faults_total{node="npu-1"} 1.0' in metrics.exposition().decode()

    # The next pass makes attempt 2: its Job says so and has the retries left.
    step(run, fake, metrics, throttle, now=1020.0)
    job = fake.jobs["run-cpu-train"]
    assert job["metadata"]["annotations"]["mathtune.dev/attempt"] == "2"
    assert job["spec"]["backoffLimit"] == 0
    assert _train_row(run)["attempts"] == 2
    # It resumed from epoch 1's save (step 25): 5 steps were trained again.
    fake.finish("run-cpu-train", 0, json.dumps({"stage": "train", "ok": True, **RESULTS["train"], "resumedFrom": {
        "epoch": 1, "checkpoint": "llama_rank_0-1_25.ckpt", "step": 25}}))
    step(run, fake, metrics, throttle, now=1030.0)
    row = _train_row(run)
    assert row["state"] == "Succeeded" and row["attempts"] == 2
    assert {k: row["deviceFaults"][0][k] for k in ("resumedFromEpoch", "resumedFromCheckpoint", "resumedFromStep",
                                                   "stepsRedone")} == {
        "resumedFromEpoch": 1, "resumedFromCheckpoint": "llama_rank_0-1_25.ckpt", "resumedFromStep": 25,
        "stepsRedone": 5}
    _declared(schema()["properties"]["status"], run["status"])


def test_a_fault_with_no_attempt_left_fails_the_run_naming_the_device(world):
    run, fake, metrics, throttle = world
    run["spec"]["runPolicy"]["backoffLimit"] = 0
    _to_training(run, fake, metrics, throttle)
    fake.device_infos["npu-1"] = _device_info(network="Ascend910-2")
    out = step(run, fake, metrics, throttle, now=1010.0)
    assert run["status"]["phase"] == "Failed"
    row = _train_row(run)
    assert row["state"] == "Failed" and "run-cpu-train" not in fake.jobs
    assert "stage train failed after 1 attempt (an NPU failed): NPU Ascend910-2 (network unhealthy)" in row["message"]
    assert "StageFailed" in [e.reason for e in out.events]


def test_a_pod_already_ending_is_left_to_end(world):
    run, fake, metrics, throttle = world
    pod = _to_training(run, fake, metrics, throttle)
    pod["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:30Z"
    fake.device_infos["npu-1"] = _device_info(unhealthy="Ascend910-3")
    step(run, fake, metrics, throttle, now=1010.0)
    assert "run-cpu-train" in fake.jobs and "deviceFaults" not in _train_row(run)
