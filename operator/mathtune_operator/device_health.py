"""NPU faults as Ascend clusters report them. Pure.

Huawei's ascend-device-plugin publishes each node's device health in the
ConfigMap kube-system/mindx-dl-deviceinfo-<node>, key DeviceInfoCfg:

    {"DeviceInfo": {"DeviceList": {"huawei.com/Ascend910": "Ascend910-0,...",
                                   "huawei.com/Ascend910-Unhealthy": "Ascend910-3",
                                   "huawei.com/Ascend910-NetworkUnhealthy": "",
                                   "huawei.com/Ascend910-Fault": "[...]"},
                    "UpdateTime": 1718702470},
     "CheckCode": "<sha256 of the DeviceInfo JSON>"}

and a ManuallySeparateNPU key an administrator fills. It annotates each pod
with the devices it really holds (huawei.com/AscendReal: "Ascend910-0,...").
MindCluster's own readers (its Volcano plugin, Resilience Controller, MindIE)
match the two; so does the operator, to stop a training attempt whose device
failed and resume it on healthy ones (reconcile/device_fault.py).
"""
import json
from typing import Callable, Dict, List, Optional

from .types import Obj

DEVICE_INFO_PREFIX = "mindx-dl-deviceinfo-"
DEVICE_INFO_KEY = "DeviceInfoCfg"
MANUALLY_SEPARATED_KEY = "ManuallySeparateNPU"
ANNOTATION_REAL = "huawei.com/AscendReal"
# The DeviceList members that take a device out of service, and what the
# status calls each: a chip fault, a fault of its RoCE link (collective
# communication breaks), and a chip an administrator separated.
UNHEALTHY_SUFFIXES = {"-Unhealthy": "unhealthy", "-NetworkUnhealthy": "network unhealthy"}
MANUALLY_SEPARATED = "manually separated"


def node_of(configmap_name: str) -> Optional[str]:
    """The node a device-info ConfigMap speaks for, or None for another ConfigMap."""
    if configmap_name.startswith(DEVICE_INFO_PREFIX) and len(configmap_name) > len(DEVICE_INFO_PREFIX):
        return configmap_name[len(DEVICE_INFO_PREFIX):]
    return None


def _names(value: object) -> List[str]:
    return [n.strip() for n in str(value or "").split(",") if n.strip()]


def trim(configmap: Obj) -> Obj:
    """What the operator keeps of a kube-system ConfigMap: a device-info
    ConfigMap's two keys, and only the name of any other (so that the other
    ConfigMaps of the namespace never wake a run)."""
    meta = configmap.get("metadata") or {}
    kept: Obj = {"metadata": {"name": meta.get("name"), "namespace": meta.get("namespace")}}
    if node_of(str(meta.get("name") or "")):
        data = configmap.get("data") or {}
        kept["data"] = {k: data[k] for k in (DEVICE_INFO_KEY, MANUALLY_SEPARATED_KEY) if k in data}
    return kept


def out_of_service(configmap: Optional[Obj]) -> Dict[str, str]:
    """Device name -> why it is out of service, from a device-info ConfigMap.
    A value that is not the plugin's JSON counts as no news (the plugin
    rewrites it on every change), never as every device failing."""
    data = (configmap or {}).get("data") or {}
    found: Dict[str, str] = {}
    try:
        listing = (json.loads(data.get(DEVICE_INFO_KEY) or "{}").get("DeviceInfo") or {}).get("DeviceList") or {}
    except (ValueError, AttributeError):
        listing = {}
    if isinstance(listing, dict):
        for key, value in listing.items():
            for suffix, why in UNHEALTHY_SUFFIXES.items():
                if str(key).endswith(suffix):
                    for name in _names(value):
                        found.setdefault(name, why)
    for name in _names(data.get(MANUALLY_SEPARATED_KEY)):
        found.setdefault(name, MANUALLY_SEPARATED)
    return found


def pod_devices(pod: Obj) -> List[str]:
    """The NPUs the device plugin gave the pod (its huawei.com/AscendReal)."""
    return _names(((pod.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_REAL))


def pod_node(pod: Obj) -> Optional[str]:
    return (pod.get("spec") or {}).get("nodeName")


def faults(pods: List[Obj], device_info: Callable[[str], Optional[Obj]]) -> List[Obj]:
    """Each live pod holding a device that is now out of service:
    {pod, node, devices: [{name, why}]}. A pod already ending is left to end."""
    found = []
    for pod in pods:
        meta, phase = pod.get("metadata") or {}, (pod.get("status") or {}).get("phase")
        node, held = pod_node(pod), pod_devices(pod)
        if meta.get("deletionTimestamp") or phase not in ("Pending", "Running") or not node or not held:
            continue
        broken = out_of_service(device_info(node))
        bad = [{"name": name, "why": broken[name]} for name in held if name in broken]
        if bad:
            found.append({"pod": meta.get("name"), "node": node, "devices": bad})
    return found
