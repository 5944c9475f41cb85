"""An NPU fault on the real node, as Ascend clusters report one: the emulated
device plugin (hack/ascend-device-plugin) tells the kubelet through
ListAndWatch, publishes the node's device-info ConfigMap as Huawei's plugin
does, and annotates each pod with the NPUs it really holds. The operator's
reader of that ConfigMap (device_health.py) reads what the plugin wrote."""
import hashlib
import json

import pytest
from kubernetes import client

from hack.cluster import local
from mathtune_operator import device_health
from tests.waiting import wait_for

from .test_real_node import NPU, _log, _phase, _pod

pytestmark = pytest.mark.integration

DEVICE_INFO = f"{device_health.DEVICE_INFO_PREFIX}{local.REAL_NODE}"


def _device_info(core):
    return core.read_namespaced_config_map(DEVICE_INFO, "kube-system").to_dict()


def _allocatable(core) -> str:
    return core.read_node(local.REAL_NODE).status.allocatable[NPU]


def _held(core, namespace, name):
    annotations = core.read_namespaced_pod(name, namespace).metadata.annotations or {}
    return annotations.get(device_health.ANNOTATION_REAL)


def test_a_failed_npu_leaves_service_and_the_next_pod_gets_healthy_ones(k8s_api, namespace, npu_failures):
    core = client.CoreV1Api(k8s_api)
    info = _device_info(core)["data"]
    assert device_health.out_of_service({"data": info}) == {}, info
    # The check code is the SHA-256 of the DeviceInfo member, as readers recompute it.
    cfg = json.loads(info["DeviceInfoCfg"])
    inner = json.dumps(cfg["DeviceInfo"], separators=(",", ":"), sort_keys=True)
    assert cfg["CheckCode"] == hashlib.sha256(inner.encode()).hexdigest()
    assert cfg["DeviceInfo"]["DeviceList"][NPU] == ",".join(f"Ascend910-{i}" for i in range(8))

    core.create_namespaced_pod(namespace, _pod("two", "echo ids=$ASCEND_VISIBLE_DEVICES; sleep 600", npus=2))
    wait_for(lambda: _phase(core, namespace, "two", "Running"), 120, "pod two Running")
    held = wait_for(lambda: _held(core, namespace, "two"), 30, "pod two's huawei.com/AscendReal").split(",")
    # The annotation names the NPUs the container was given (their physical ids in its environment).
    line = wait_for(lambda: [ln for ln in _log(core, namespace, "two").splitlines() if ln.startswith("ids=")],
                    30, "pod two's log")[0]
    assert sorted(int(d.rsplit("-", 1)[1]) for d in held) == sorted(int(i) for i in line[4:].split(",")), line

    bad = held[1]
    npu_failures(bad)
    wait_for(lambda: _allocatable(core) == "7", 30, "the kubelet to take the failed NPU out of allocatable")
    wait_for(lambda: device_health.out_of_service(_device_info(core)) == {bad: "unhealthy"}, 30,
             f"{DEVICE_INFO} to report {bad} unhealthy")
    listed = json.loads(_device_info(core)["data"]["DeviceInfoCfg"])["DeviceInfo"]["DeviceList"]
    assert bad not in listed[NPU].split(",") and listed[f"{NPU}-Unhealthy"] == bad

    # With pod two gone, seven NPUs are free and healthy: a pod asking seven
    # gets every one of them but the failed one.
    core.delete_namespaced_pod("two", namespace, grace_period_seconds=0)
    core.create_namespaced_pod(namespace, _pod("seven", "sleep 600", npus=7))
    wait_for(lambda: _phase(core, namespace, "seven", "Running"), 180, "pod seven Running")
    seven = wait_for(lambda: _held(core, namespace, "seven"), 30, "pod seven's huawei.com/AscendReal").split(",")
    assert len(seven) == 7 and bad not in seven, seven
