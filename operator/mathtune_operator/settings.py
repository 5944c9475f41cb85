"""The operator's settings: one object, read once at start from the command
line and the environment (flags win), then passed to whoever needs them."""
import os
import socket
from dataclasses import dataclass, replace
from typing import Mapping, Optional


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "")
    try:
        value = float(raw) if raw else default
    except ValueError as exc:
        raise SystemExit(f"{name}={raw!r}: expected a number of seconds") from exc
    if value <= 0:
        raise SystemExit(f"{name}={raw!r}: expected a number of seconds above 0")
    return value


@dataclass(frozen=True)
class Settings:
    # Passes of different runs at once, in this many threads. A pass mostly
    # waits for the API server, so more threads than cores pay off.
    workers: int = 16
    # Safety net: every active run is passed over this often even when no
    # watch event came (a watch can miss nothing, but a bug could).
    resync_interval: float = 300.0
    # Seconds between reads of a running stage pod's log for progress lines.
    progress_interval: float = 30.0
    # Every API call gives up after this long, so no hung call holds a worker.
    request_timeout: float = 30.0
    # A run whose pass failed (API server away, a conflict) is retried after
    # this, doubling up to retry_max.
    retry_base: float = 1.0
    retry_max: float = 60.0
    # A stage refused by the API server (quota, admission) is tried again
    # this often: nothing the operator watches says when it may succeed.
    blocked_retry: float = 15.0
    # Liveness fails when ready work has waited this long for a worker and
    # no pass has ended for as long.
    stall_after: float = 120.0
    # Leader election on a Lease (off: this process always reconciles).
    leader_election: bool = True
    lease_namespace: str = "default"
    lease_name: str = "mathtune-operator"
    identity: str = ""
    # Where the Ascend device plugin publishes each node's device health
    # (mindx-dl-deviceinfo-<node>, MindCluster's convention); "" ignores NPU faults.
    device_info_namespace: str = "kube-system"

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> "Settings":
        env = os.environ if env is None else env
        return cls(
            resync_interval=_seconds(env, "MATHTUNE_RESYNC_INTERVAL", cls.resync_interval),
            progress_interval=_seconds(env, "MATHTUNE_PROGRESS_INTERVAL", cls.progress_interval),
            request_timeout=_seconds(env, "MATHTUNE_REQUEST_TIMEOUT", cls.request_timeout),
            lease_namespace=env.get("POD_NAMESPACE") or cls.lease_namespace,
            identity=env.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}",
            device_info_namespace=env.get("MATHTUNE_DEVICE_INFO_NAMESPACE", cls.device_info_namespace),
        )

    def with_(self, **changes: object) -> "Settings":
        return replace(self, **changes)  # type: ignore[arg-type]
