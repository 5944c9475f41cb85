"""Finish a simulated pod the way a kubelet would.

kwok makes MathFinetune stage pods Running but never completes them (see
kwok.yaml). Tests that play a stage call `complete_pod` with the exit code and
termination message the real stage command would have produced; the Job
controller then sees a real Succeeded or Failed pod.
"""
import datetime as _dt
import time
from typing import Optional

from kubernetes import client


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def wait_running(core: client.CoreV1Api, namespace: str, name: str, timeout: float = 60) -> client.V1Pod:
    """kwok must have started the pod first, or its pod-create stage would
    later overwrite the terminal status we write."""
    deadline = time.monotonic() + timeout
    while True:
        pod = core.read_namespaced_pod(name, namespace)
        if pod.status.phase == "Running":
            return pod
        if time.monotonic() > deadline:
            raise TimeoutError(f"pod {namespace}/{name} not Running after {timeout}s (phase {pod.status.phase})")
        time.sleep(0.2)


def complete_pod(core: client.CoreV1Api, namespace: str, pod_name: str, exit_code: int,
                 message: str = "", reason: Optional[str] = None) -> None:
    pod = wait_running(core, namespace, pod_name)
    started = _now()
    statuses = []
    for c in pod.spec.containers:
        statuses.append({
            "name": c.name,
            "image": c.image,
            "ready": False,
            "started": False,
            "restartCount": 0,
            "state": {"terminated": {
                "exitCode": exit_code,
                "reason": reason or ("Completed" if exit_code == 0 else "Error"),
                "message": message,
                "startedAt": started,
                "finishedAt": _now(),
            }},
        })
    phase = "Succeeded" if exit_code == 0 else "Failed"
    body = {"status": {
        "phase": phase,
        "containerStatuses": statuses,
        "conditions": [
            {"type": "Ready", "status": "False", "reason": "PodCompleted", "lastTransitionTime": _now()},
            {"type": "ContainersReady", "status": "False", "reason": "PodCompleted", "lastTransitionTime": _now()},
        ],
    }}
    core.patch_namespaced_pod_status(pod_name, namespace, body)
