"""`logs`: a run's logs across its stages, in order, each line prefixed with its
stage (and rank for training); with follow, the running stage's pod and then
the next stage's, until the run ends."""
import time
from typing import Any, Callable, List, Optional, Set

from .kube import Cluster

INDEX = "batch.kubernetes.io/job-completion-index"
FINISHED = ("Succeeded", "Failed")


def _rank(pod: Any) -> Optional[int]:
    """The node rank of a training pod: its Indexed Job's completion index (multi-node), else 0."""
    if (pod.metadata.labels or {}).get("mathtune.dev/stage") != "train":
        return None
    rank = (pod.metadata.annotations or {}).get(INDEX)
    return int(rank) if rank is not None and rank.isdigit() else 0


def prefix(pod: Any) -> str:
    stage = (pod.metadata.labels or {}).get("mathtune.dev/stage", "?")
    rank = _rank(pod)
    return f"[{stage}/rank {rank}]" if rank is not None else f"[{stage}]"


def _restarted(pod: Any) -> bool:
    return any((s.restart_count or 0) > 0 for s in pod.status.container_statuses or [])


def chosen(pods: List[Any], stage: Optional[str], rank: Optional[int]) -> List[Any]:
    out = []
    for pod in pods:
        if stage and (pod.metadata.labels or {}).get("mathtune.dev/stage") != stage:
            continue
        if rank is not None and _rank(pod) not in (None, rank):
            continue
        out.append(pod)
    return out


def _emit(write: Callable[[str], None], tag: str, text: str) -> None:
    for line in text.splitlines():
        write(f"{tag} {line}")


def print_pod(cluster: Cluster, pod: Any, write: Callable[[str], None]) -> None:
    """Everything a pod logged: a crashed container's previous run first."""
    tag = prefix(pod)
    if _restarted(pod):
        _emit(write, tag + "[previous]", cluster.log(pod.metadata.name, previous=True) or "")
    if pod.status.phase in ("Pending",) and not pod.status.container_statuses:
        return
    _emit(write, tag, cluster.log(pod.metadata.name) or "")


def logs(cluster: Cluster, name: str, write: Callable[[str], None], stage: Optional[str] = None,
         rank: Optional[int] = None) -> None:
    for pod in chosen(cluster.stage_pods(name), stage, rank):
        print_pod(cluster, pod, write)


def follow(cluster: Cluster, name: str, write: Callable[[str], None], stage: Optional[str] = None,
           rank: Optional[int] = None, poll: float = 1.0) -> str:
    """Print finished pods whole and follow running ones, in creation order, until the run ends; its phase."""
    done: Set[str] = set()
    while True:
        run = cluster.run(name)
        phase = (run.get("status") or {}).get("phase")
        pods = chosen(cluster.stage_pods(name), stage, rank)
        pending: List[Any] = [p for p in pods if p.metadata.name not in done]
        if phase in FINISHED:  # nothing more will start: what is left, whole
            for pod in pending:
                print_pod(cluster, pod, write)
            return str(phase)
        for pod in pending:
            if pod.status.phase in FINISHED:
                print_pod(cluster, pod, write)
                done.add(pod.metadata.name)
            elif pod.status.phase == "Running":
                if _restarted(pod):
                    _emit(write, prefix(pod) + "[previous]", cluster.log(pod.metadata.name, previous=True) or "")
                stream = cluster.log(pod.metadata.name, follow=True)
                buffer = b""
                for chunk in stream.stream(amt=4096, decode_content=True):
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        write(f"{prefix(pod)} {line.decode(errors='replace')}")
                if buffer:
                    write(f"{prefix(pod)} {buffer.decode(errors='replace')}")
                done.add(pod.metadata.name)
                break  # the next one may not exist yet: look again
            else:
                break  # Pending: wait for it to start
        time.sleep(poll)
