"""Leader election on a coordination.k8s.io Lease, as client-go's
leaderelection does it, so the chart can run two replicas.

The holder renews the Lease every `retry_period`; a candidate takes it over
only when `renewTime + leaseDurationSeconds` has passed. Writes carry the
Lease's resourceVersion, so two candidates cannot both win: the API server
refuses the second with 409. A leader that cannot renew within
`renew_deadline` steps down before its Lease can expire under it, so two
replicas never reconcile at once (barring clock skew beyond the margin).
"""
import datetime as _dt
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

from kubernetes import client
from kubernetes.client.exceptions import ApiException

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeaseSettings:
    namespace: str
    name: str
    identity: str
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0
    request_timeout: float = 5.0


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _micro(ts: _dt.datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(value: Any) -> Optional[_dt.datetime]:
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=_dt.timezone.utc)
    return _dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


class LeaderElector:
    def __init__(self, api: client.ApiClient, settings: LeaseSettings,
                 on_started: Callable[[], None], on_stopped: Callable[[], None]):
        self.api = client.CoordinationV1Api(api)
        self.s = settings
        self.on_started, self.on_stopped = on_started, on_stopped
        self.leading = threading.Event()
        self.stopping = threading.Event()
        self.thread: Optional[threading.Thread] = None
        self.last_renewed = 0.0  # monotonic time of the last successful acquire/renew
        self.other_holds = False  # the last read found another holder's unexpired Lease

    def start(self) -> "LeaderElector":
        self.thread = threading.Thread(target=self._run, name="leader-election", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        """Step down and give the Lease up, so a standby takes over at once."""
        self.stopping.set()
        if self.thread:
            self.thread.join(timeout=self.s.request_timeout * 2)
        if self.leading.is_set():
            self._release()
            self._step_down()

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                won = self._try_acquire_or_renew()
            except Exception as exc:  # noqa: BLE001 - the API server may be away for a while
                log.warning("leader election: %s", exc)
                won = False
            now = time.monotonic()
            if won:
                self.last_renewed = now
                if not self.leading.is_set():
                    log.warning("leader election: %s now leads (Lease %s/%s)", self.s.identity, self.s.namespace,
                                self.s.name)
                    self.leading.set()
                    self.on_started()
            elif self.leading.is_set() and (self.other_holds or now - self.last_renewed > self.s.renew_deadline):
                log.warning("leader election: %s: stepping down",
                            "another replica holds the Lease" if self.other_holds
                            else f"could not renew the Lease for {self.s.renew_deadline:.0f}s")
                self._step_down()
            self.stopping.wait(self.s.retry_period)

    def _step_down(self) -> None:
        if self.leading.is_set():
            self.leading.clear()
            self.on_stopped()

    def _try_acquire_or_renew(self) -> bool:
        self.other_holds = False
        now = _now()
        spec = {"holderIdentity": self.s.identity, "leaseDurationSeconds": int(self.s.lease_duration),
                "renewTime": _micro(now)}
        try:
            lease = self.api.read_namespaced_lease(self.s.name, self.s.namespace,
                                                   _request_timeout=self.s.request_timeout)
        except ApiException as exc:
            if exc.status != 404:
                raise
            body = {"metadata": {"name": self.s.name, "namespace": self.s.namespace},
                    "spec": {**spec, "acquireTime": _micro(now), "leaseTransitions": 0}}
            try:
                self.api.create_namespaced_lease(self.s.namespace, body, _request_timeout=self.s.request_timeout)
                return True
            except ApiException as exc2:
                if exc2.status == 409:
                    return False  # another candidate created it first
                raise
        holder = lease.spec.holder_identity
        renewed = _parse(lease.spec.renew_time)
        duration = lease.spec.lease_duration_seconds or int(self.s.lease_duration)
        held_by_other = bool(holder) and holder != self.s.identity
        if held_by_other and renewed is not None and now < renewed + _dt.timedelta(seconds=duration):
            self.other_holds = True
            return False
        transitions = int(lease.spec.lease_transitions or 0)
        body = {"metadata": {"name": self.s.name, "namespace": self.s.namespace,
                             "resourceVersion": lease.metadata.resource_version},
                "spec": {**spec,
                         "acquireTime": _micro(now) if holder != self.s.identity else _micro(
                             _parse(lease.spec.acquire_time) or now),
                         "leaseTransitions": transitions + (1 if holder != self.s.identity else 0)}}
        try:
            self.api.replace_namespaced_lease(self.s.name, self.s.namespace, body,
                                              _request_timeout=self.s.request_timeout)
            return True
        except ApiException as exc:
            if exc.status == 409:
                return False  # someone else wrote it since we read it
            raise

    def _release(self) -> None:
        try:
            lease = self.api.read_namespaced_lease(self.s.name, self.s.namespace,
                                                   _request_timeout=self.s.request_timeout)
            if lease.spec.holder_identity != self.s.identity:
                return
            body = {"metadata": {"name": self.s.name, "namespace": self.s.namespace,
                                 "resourceVersion": lease.metadata.resource_version},
                    "spec": {"holderIdentity": None, "leaseDurationSeconds": 1,
                             "renewTime": _micro(_now()),
                             "acquireTime": _micro(_parse(lease.spec.acquire_time) or _now()),
                             "leaseTransitions": lease.spec.lease_transitions or 0}}
            self.api.replace_namespaced_lease(self.s.name, self.s.namespace, body,
                                              _request_timeout=self.s.request_timeout)
        except ApiException as exc:
            log.warning("leader election: could not release the Lease: %s %s", exc.status, exc.reason)
