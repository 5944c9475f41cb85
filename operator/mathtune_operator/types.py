"""Types the operator's modules share without importing each other: a
Kubernetes object as JSON, and what the pure reconcile needs of the cluster
(children.Cluster is the real one; tests pass their own)."""
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Protocol

Obj = Dict[str, Any]


@dataclass
class Event:
    """An Event a pass decided to post on its object."""
    type: str  # Normal | Warning
    reason: str  # CamelCase
    message: str


class ClusterView(Protocol):
    def ensure(self, obj: Obj) -> bool: ...

    def find_job(self, namespace: str, name: str) -> Optional[Obj]: ...

    def job_pods(self, namespace: str, job_name: str) -> List[Obj]: ...

    def pod_log_tail(self, namespace: str, pod: str, lines: int = 200) -> str: ...

    def set_job_suspend(self, namespace: str, name: str, suspend: bool) -> None: ...

    def workload_of(self, namespace: str, job_uid: str) -> Optional[Obj]: ...

    def set_workload_active(self, namespace: str, name: str, active: bool) -> None: ...

    def delete_job(self, namespace: str, name: str, uid: Optional[str], foreground: bool = False) -> None: ...

    def delete_jobs(self, namespace: str, run: str) -> int: ...

    def device_info(self, node: str) -> Optional[Obj]: ...
