"""msrun: one command per node starts every local rank of a MindSpore job.

    msrun --worker_num=<ranks in total> --local_worker_num=<ranks here>
          --master_addr=<rank 0's IP> --master_port=<port> --node_rank=<this node>
          --log_dir=<dir> --join=True --cluster_time_out=<s> <script> <args>

`--join=True` keeps msrun in the foreground until every rank ends (else it
returns at once and the pod ends with the job still running) and makes its
exit code the job's. msrun starts the ranks with a bare `python`, so the
interpreter running this stage goes first on PATH. In MindSpore 2.3,
`master_addr` must be an IP on rank 0's own interface, so a pod hostname such
as `<job>-0.<service>` is resolved here first (REFERENCE §3).
"""
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

from ..errors import SpecError

DEFAULT_PORT = 8118
LOCALHOST = "127.0.0.1"


class RendezvousTimeout(RuntimeError):
    """Rank 0 did not appear in time: transient (exit 1), so the operator
    starts the next attempt of every rank rather than failing the run."""


def resolve_master(addr: str, timeout: float, interval: float = 2.0, service: Optional[str] = None) -> str:
    """An IP for `addr`, waiting for DNS: a headless Service's record of a
    pod appears only once the pod runs.

    service: the headless Service's own name. It resolves as soon as any rank
    runs (this one does), so when it resolves and rank 0's name does not,
    rank 0's pod is what is missing; when neither does, it is the Service
    (or the cluster's DNS).
    """
    try:
        socket.inet_aton(addr)
        return addr
    except OSError:
        pass
    deadline = time.monotonic() + timeout
    while True:
        try:
            return socket.gethostbyname(addr)
        except OSError as exc:
            if time.monotonic() >= deadline:
                raise RendezvousTimeout(_missing(addr, service, timeout, exc)) from exc
            time.sleep(interval)


def _missing(addr: str, service: Optional[str], timeout: float, exc: OSError) -> str:
    waited = f"rank 0 ({addr}) did not resolve within {timeout:.0f} s (spec.runPolicy.rendezvousTimeoutSeconds)"
    if service is None:
        return f"{waited}: {exc}"
    try:
        socket.gethostbyname(service)
    except OSError:
        return (f"{waited}, nor did the headless Service {service}: the Service is missing or the cluster's DNS "
                f"does not answer ({exc})")
    return (f"{waited}, while the headless Service {service} does: rank 0's pod is not running (not scheduled, "
            f"or still starting; the run's status says why)")


def service_of(addr: str) -> Optional[str]:
    """The headless Service's name in a pod's name `<pod>.<service>.<ns>.svc...`."""
    parts = addr.split(".", 1)
    return parts[1] if len(parts) == 2 and "." in parts[1] else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOCALHOST, 0))
        return s.getsockname()[1]


def msrun_executable() -> List[str]:
    """msrun of this interpreter's environment (the same MindSpore the stage imports)."""
    beside = Path(sys.executable).parent / "msrun"
    if beside.exists():
        return [str(beside)]
    return [sys.executable, "-m", "mindspore.parallel.cluster.run"]


# Set by Huawei's device plugin (and ours, hack/ascend-device-plugin) to the
# physical ids of the NPUs the kubelet allocated to this container.
VISIBLE_DEVICES = "ASCEND_VISIBLE_DEVICES"


def local_workers(npus_per_node: int, env: Optional[Dict[str, str]] = None) -> int:
    """Worker processes on this node: one per allocated NPU.

    Where a device plugin allocated NPUs, what it allocated is the truth: a
    count that disagrees with spec.resources.npusPerNode would give msrun and
    the parallel config different world sizes, so it is refused. Without an
    allocation (a cpu-profile run that asked for none) npusPerNode says it.
    """
    visible = (os.environ if env is None else env).get(VISIBLE_DEVICES, "").strip()
    if not visible:
        return npus_per_node
    ids = [part.strip() for part in visible.split(",") if part.strip()]
    if len(set(ids)) != len(ids) or len(ids) != npus_per_node:
        raise SpecError("spec.resources.npusPerNode",
                        f"as many NPUs as the device plugin allocated ({VISIBLE_DEVICES}={visible}: "
                        f"{len(set(ids))} distinct), got {npus_per_node}")
    return len(ids)


def msrun_command(*, script: str, script_args: List[str], local_workers: int, nodes: int,
                  master_addr: str, master_port: int, node_rank: int, log_dir: str,
                  cluster_timeout: int = 600) -> List[str]:
    if local_workers < 1 or nodes < 1:
        raise SpecError("spec.resources", f"at least one worker per node and one node "
                                          f"(npusPerNode {local_workers}, nodes {nodes})")
    if not 0 <= node_rank < nodes:
        raise SpecError("--node-rank", f"0..{nodes - 1} (got {node_rank})")
    return msrun_executable() + [
        f"--worker_num={local_workers * nodes}",
        f"--local_worker_num={local_workers}",
        f"--master_addr={master_addr}",
        f"--master_port={master_port}",
        f"--node_rank={node_rank}",
        f"--log_dir={log_dir}",
        "--join=True",
        f"--cluster_time_out={cluster_timeout}",
        script,
        *script_args,
    ]


def environment(base: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = dict(os.environ if base is None else base)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


class LogFollower(threading.Thread):
    """Feeds the lines a growing log file gets to `on_line`, until stopped (then reads what is left)."""

    def __init__(self, path: Path, on_line: Callable[[str], None], interval: float = 0.5):
        super().__init__(daemon=True)
        self.path, self.on_line, self.interval = Path(path), on_line, interval
        self._done = threading.Event()

    def run(self) -> None:
        while not self.path.exists() and not self._done.is_set():
            time.sleep(self.interval)
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8", errors="replace") as fh:
            partial = ""
            while True:
                chunk = fh.readline()
                if chunk:
                    partial += chunk
                    if partial.endswith("\n"):
                        self.on_line(partial.rstrip("\n"))
                        partial = ""
                    continue
                if self._done.is_set():
                    if partial:
                        self.on_line(partial)
                    return
                time.sleep(self.interval)

    def stop(self) -> None:
        self._done.set()
        self.join()


def run(command: List[str], *, follow: Optional[Path] = None, on_line: Callable[[str], None] = lambda _: None,
        env: Optional[Dict[str, str]] = None, cwd: Optional[str] = None) -> int:
    """Run msrun in the foreground, following one worker log meanwhile; its exit code is returned as is."""
    follower = LogFollower(follow, on_line) if follow is not None else None
    if follower:
        follower.start()
    try:
        proc = subprocess.run(command, env=env if env is not None else environment(), cwd=cwd, check=False)
    finally:
        if follower:
            follower.stop()
    return proc.returncode


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(Path(path).read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return f"({path} not written)"
