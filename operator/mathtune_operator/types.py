"""Types the operator's modules share without importing each other: a
Kubernetes object as JSON, and what the pure reconcile needs of the cluster
(children.Cluster is the real one; tests pass their own)."""
from typing import Any, Dict, List, Optional, Protocol

Obj = Dict[str, Any]


class ClusterView(Protocol):
    def ensure(self, obj: Obj) -> bool: ...

    def get_job(self, namespace: str, name: str) -> Optional[Obj]: ...

    def job_pods(self, namespace: str, job_name: str) -> List[Obj]: ...

    def pod_log_tail(self, namespace: str, pod: str, lines: int = 200) -> str: ...

    def set_job_suspend(self, namespace: str, name: str, suspend: bool) -> None: ...

    def delete_jobs(self, namespace: str, run: str) -> int: ...
