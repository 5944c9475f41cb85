"""The sweep controller: what wakes a sweep's pass, and the API calls the
pass decided (sweeps/sweep_pass.py is pure).

- kopf's watch of MathFinetuneSweeps queues a sweep when it appears or its
  spec changes; the watch of MathFinetunes queues a trial's sweep whenever
  the trial changes (its status is the sweep's input).
- One worker thread: sweeps are few and a pass is cheap next to a trial.
- Only the leader passes (the run controller's Lease); a standby keeps its
  sweeps queued, looking again every few seconds, and takes over at once.
- A pruned trial's run is suspended (and annotated with why) before the
  status that says it was pruned is written: the run object is the record.
- Trials are made by name (<sweep>-<number>) and the pass that makes one
  records it from the cluster if its own status patch was lost, so a crash
  between the two never makes a trial twice (AlreadyExists is that case).
"""
import json
import logging
import threading
import time
from typing import Any, Dict, List, Optional, Tuple, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from . import names, workqueue
from . import status as st
from .events import EventRecorder
from .metrics import METRICS
from .sweeps.sweep_pass import refuse_trials, sweep_pass
from .types import Obj

log = logging.getLogger("mathtune_operator.sweeps")
Key = Tuple[str, str]  # (namespace, sweep name)
STANDBY_RETRY = 5.0


def _message(exc: ApiException) -> str:
    """The API server's message of a refusal (its Status body), else the reason."""
    try:
        return str(json.loads(exc.body or "{}").get("message") or exc.reason)
    except ValueError:
        return str(exc.reason)


class SweepController:
    def __init__(self, api: client.ApiClient, events: EventRecorder, leading: threading.Event,
                 request_timeout: float, retry_base: float = 1.0, retry_max: float = 60.0):
        self.custom = client.CustomObjectsApi(api)
        self.events, self.leading, self.timeout = events, leading, request_timeout
        self.retry_base, self.retry_max = retry_base, retry_max
        self.queue: "workqueue.WorkQueue[Key]" = workqueue.WorkQueue()
        self.failures: Dict[Key, int] = {}
        self.stopping = threading.Event()
        self.worker: Optional[threading.Thread] = None

    def seen(self, event_type: Optional[str], namespace: str, name: str) -> None:
        key = (namespace, name)
        if event_type == "DELETED":
            self.queue.forget(key)
            self.failures.pop(key, None)
            METRICS.forget_sweep(namespace, name)
            return
        self.queue.add(key)

    def trial_changed(self, namespace: str, sweep: str) -> None:
        self.queue.add((namespace, sweep), urgent=True)

    def start(self) -> "SweepController":
        self.worker = threading.Thread(target=self._work, name="sweeps", daemon=True)
        self.worker.start()
        return self

    def shutdown(self) -> None:
        self.stopping.set()
        self.queue.close()
        if self.worker:
            self.worker.join(timeout=self.timeout)

    def alive(self) -> bool:
        return self.worker is None or self.worker.is_alive()

    def _work(self) -> None:
        while not self.stopping.is_set():
            key = self.queue.get(timeout=1.0)
            if key is None:
                continue
            again: Optional[float] = STANDBY_RETRY
            try:
                if self.leading.is_set():
                    again = self._pass(key)
                    self.failures.pop(key, None)
            except Exception as exc:  # noqa: BLE001 - one bad sweep must not stop the others
                failures = self.failures.get(key, 0) + 1
                self.failures[key] = failures
                again = min(self.retry_base * 2 ** (failures - 1), self.retry_max)
                METRICS.reconcile_errors.labels(type(exc).__name__).inc()
                log.warning("sweep %s/%s: pass failed (%s); again in %.0fs", key[0], key[1], exc, again,
                            exc_info=not isinstance(exc, (ApiException, OSError)))
            finally:
                self.queue.done(key)
            if again is not None:
                self.queue.add_after(key, again)

    def _pass(self, key: Key) -> Optional[float]:
        namespace, name = key
        try:
            sweep = cast(Obj, self.custom.get_namespaced_custom_object(
                names.GROUP, names.VERSION, namespace, names.SWEEP_PLURAL, name, _request_timeout=self.timeout))
        except ApiException as exc:
            if exc.status == 404:
                METRICS.forget_sweep(namespace, name)
                return None
            raise
        if sweep["metadata"].get("deletionTimestamp"):
            return None
        trials = self._trials(namespace, name)
        result = sweep_pass(sweep, trials, time.time())
        for trial, reason in result.prune.items():
            self._suspend(namespace, trial, reason)
        refused = {}
        for body in result.create:
            why = self._create(namespace, body)
            if why:
                refused[body["metadata"]["name"]] = why
        refuse_trials(result, refused)
        changed = st.changed(sweep.get("status") or {}, result.status)
        if changed:
            # Only if the sweep is still as read: a newer one is passed again.
            self.custom.patch_namespaced_custom_object_status(
                names.GROUP, names.VERSION, namespace, names.SWEEP_PLURAL, name,
                {"metadata": {"resourceVersion": sweep["metadata"].get("resourceVersion")}, "status": changed},
                _request_timeout=self.timeout)
        for event in result.events:
            self.events.post(sweep, event.type, event.reason, event.message)
        METRICS.observe_sweep(namespace, name, result.status.get("counts") or {},
                              (result.status.get("best") or {}).get("objective"))
        return result.requeue_after

    def _trials(self, namespace: str, sweep: str) -> List[Obj]:
        listed: Dict[str, Any] = self.custom.list_namespaced_custom_object(
            names.GROUP, names.VERSION, namespace, names.PLURAL, label_selector=f"{names.LABEL_SWEEP}={sweep}",
            _request_timeout=self.timeout)
        return list(listed.get("items") or [])

    def _suspend(self, namespace: str, trial: str, why: str) -> None:
        """Stop a pruned trial's stages: its run is suspended, its checkpoints kept."""
        body = {"metadata": {"annotations": {names.ANNOTATION_PRUNED: why}},
                "spec": {"runPolicy": {"suspend": True}}}
        try:
            self.custom.patch_namespaced_custom_object(names.GROUP, names.VERSION, namespace, names.PLURAL, trial,
                                                       body, _request_timeout=self.timeout)
        except ApiException as exc:
            if exc.status != 404:  # deleted meanwhile: the next pass records it as such
                raise

    def _create(self, namespace: str, body: Obj) -> Optional[str]:
        """Create a trial; the API server's reason when it refuses the trial
        as invalid (422), which no retry would change."""
        try:
            self.custom.create_namespaced_custom_object(names.GROUP, names.VERSION, namespace, names.PLURAL, body,
                                                        _request_timeout=self.timeout)
        except ApiException as exc:
            if exc.status == 422:
                return _message(exc)
            if exc.status != 409:  # made by an earlier pass whose status patch was lost: recorded next pass
                raise
        return None
