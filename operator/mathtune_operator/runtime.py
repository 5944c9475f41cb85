"""The controller: what wakes a run's reconcile pass, and who runs it.

- kopf watches MathFinetunes (`on.event`, which needs no finalizer) and
  queues a run when it appears or its spec changes (its generation moves);
  our own status patches do not wake it.
- Informers (informer.py) list and watch the runs' Jobs and pods, label-
  selected, and queue exactly the owning run on every change: a stage
  boundary costs one watch event, not a polling interval. Passes read Jobs and
  pods from these caches.
- `settings.workers` threads take runs from one work queue (workqueue.py):
  at most one pass per run at a time, runs in parallel. Every API call has
  a timeout, so one hung request holds one worker, never the others.
- A pass says when it wants to run again (Pass.requeue_after): soon while a
  stage reports progress, after a retry delay when refused, at the TTL of a
  finished run, else after a slow resync. A finished run costs nothing.
- With leader election only the Lease holder runs passes; a standby keeps
  its caches warm and takes over when the Lease expires.

Why not kopf timers or daemons: kopf gives every object with a timer a
finalizer, and a finalizer makes a run undeletable (and its namespace stuck
Terminating) whenever the operator is not running. Nothing about deleting a
run needs the operator: its Jobs go by ownerReference and its claim is kept.
"""
import logging
import threading
import time
from typing import Any, Dict, List, Optional, Tuple, cast

import kopf
from kubernetes import client, config as k8s_config
from kubernetes.client.exceptions import ApiException
from prometheus_client import start_http_server

from . import __version__, children, device_health, informer, names, reconcile, workqueue
from . import status as st
from .events import EventRecorder
from .leader import LeaderElector, LeaseSettings
from .metrics import METRICS
from .settings import Settings
from .sweep_runtime import SweepController
from .types import Obj

log = logging.getLogger("mathtune_operator")
Key = Tuple[str, str]  # (namespace, run name)
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"  # the Job controller's label on its pods


def _api(settings: Settings) -> client.ApiClient:
    try:
        k8s_config.load_incluster_config()
    except k8s_config.ConfigException:
        k8s_config.load_kube_config()
    api = client.ApiClient()
    # The API server names a writer by its User-Agent: managedFields and the
    # audit log then say mathtune-operator, not the client library's
    # "OpenAPI-Generator".
    api.user_agent = f"{names.MANAGED_BY}/{__version__}"
    # Room for every worker, the Event senders and the informers' long-lived watches.
    api.rest_client.pool_manager.connection_pool_kw["maxsize"] = settings.workers + 12
    return api


class CachedCluster(children.Cluster):
    """children.Cluster whose reads of Jobs and pods come from the informers."""

    def __init__(self, api: client.ApiClient, jobs: "informer.Informers", pods: "informer.Informers",
                 request_timeout: float, device_infos: Optional["informer.Informers"] = None):
        super().__init__(api, request_timeout=request_timeout)
        self.jobs, self.pods, self.device_infos = jobs, pods, device_infos

    def device_info(self, node: str) -> Optional[Obj]:
        if self.device_infos is None:
            return None
        member = self.device_infos.members[0]
        return self.device_infos.get(member.namespace or "", device_health.DEVICE_INFO_PREFIX + node)

    def find_job(self, namespace: str, name: str) -> Optional[Obj]:
        return self.jobs.get(namespace, name)

    def job_pods(self, namespace: str, job_name: str) -> List[Obj]:
        return self.pods.select(namespace, JOB_NAME_LABEL, job_name)


class Controller:
    def __init__(self, settings: Optional[Settings] = None, namespaces: Optional[List[str]] = None):
        self.settings = settings or Settings.from_env()
        self.namespaces = list(namespaces or [])
        # A quarter of the workers may always serve new runs, spec changes
        # and timed passes; the rest serve runs whose Job or pod changed first.
        self.queue: "workqueue.WorkQueue[Key]" = workqueue.WorkQueue(
            on_taken=METRICS.queue_wait.observe, reserved=max(1, self.settings.workers // 4))
        self.known: Dict[Key, int] = {}  # run -> last generation seen
        self.failures: Dict[Key, int] = {}  # run -> passes failed in a row
        # The run as kopf's watch last delivered it, and the status our last
        # patch left (as the API server returned it): see _read_run.
        self.bodies: Dict[Key, Obj] = {}
        self.written: Dict[Key, Obj] = {}
        self.lock = threading.Lock()
        self.leading = threading.Event()
        self.stopping = threading.Event()
        self.workers: List[threading.Thread] = []
        self.last_pass_end = time.monotonic()  # liveness: when a worker last finished a pass
        self.elector: Optional[LeaderElector] = None
        self.sweeps: Optional[SweepController] = None
        self.device_infos: Optional[informer.Informers] = None
        self.reconcile_settings = reconcile.Settings(progress_interval=self.settings.progress_interval,
                                                     resync_interval=self.settings.resync_interval,
                                                     blocked_retry=self.settings.blocked_retry)

    # -- from kopf's watch of the runs ------------------------------------------
    def seen(self, event_type: Optional[str], namespace: str, name: str, generation: int,
             body: Optional[Obj] = None) -> None:
        key = (namespace, name)
        with self.lock:
            if event_type == "DELETED":
                self.known.pop(key, None)
                self.failures.pop(key, None)
                self.bodies.pop(key, None)
                self.written.pop(key, None)
                METRICS.forget_run(namespace, name)
                self.queue.forget(key)
                return
            before = self.known.get(key)
            self.known[key] = generation
            if body is not None:
                self.bodies[key] = body
        if before is None or generation != before:
            self.queue.add(key)  # a new run or a spec change; our own status patches do not count

    def job_or_pod_changed(self, namespace: str, run: str) -> None:
        # Urgent: a stage may have just ended, and the next waits for its Job.
        self.queue.add((namespace, run), urgent=True)

    def _device_info_changed(self, configmap: Obj) -> None:
        node = device_health.node_of(str(configmap["metadata"].get("name") or ""))
        if not node:
            return
        for pod in self.pods.find(lambda o: device_health.pod_node(o) == node and bool(device_health.pod_devices(o))):
            run = (pod["metadata"].get("labels") or {}).get(names.LABEL_RUN)
            if run:
                self.job_or_pod_changed(pod["metadata"].get("namespace") or "", run)

    # -- life ---------------------------------------------------------------------
    def start(self) -> None:
        s = self.settings
        self.api = _api(s)
        self.custom = client.CustomObjectsApi(self.api)
        batch, core = client.BatchV1Api(self.api), client.CoreV1Api(self.api)
        selector = f"{names.LABEL_MANAGED_BY}={names.MANAGED_BY}"
        scopes: List[Optional[str]] = list(self.namespaces) or [None]
        self.jobs = informer.Informers([
            informer.Informer("jobs", batch.list_namespaced_job if ns else batch.list_job_for_all_namespaces, ns,
                              selector, informer.trim_job, self.job_or_pod_changed, request_timeout=s.request_timeout)
            for ns in scopes])
        self.pods = informer.Informers([
            informer.Informer("pods", core.list_namespaced_pod if ns else core.list_pod_for_all_namespaces, ns,
                              selector, informer.trim_pod, self.job_or_pod_changed, request_timeout=s.request_timeout,
                              index_label=JOB_NAME_LABEL)
            for ns in scopes])
        # Nodes' NPU health, as the Ascend device plugin publishes it: a
        # change wakes the runs with a pod on that node holding NPUs.
        self.device_infos = informer.Informers([
            informer.Informer("configmaps", core.list_namespaced_config_map, s.device_info_namespace, "",
                              device_health.trim, self.job_or_pod_changed, request_timeout=s.request_timeout,
                              route=self._device_info_changed)]) if s.device_info_namespace else None
        self.cluster = CachedCluster(self.api, self.jobs, self.pods, s.request_timeout, self.device_infos)
        self.events = EventRecorder(self.api, request_timeout=s.request_timeout)
        self.sweeps = SweepController(self.api, self.events, self.leading, s.request_timeout, s.retry_base,
                                      s.retry_max).start()
        self.jobs.start()
        self.pods.start()
        if self.device_infos:
            self.device_infos.start()
        # As client-go's WaitForCacheSync: a pass on an empty cache would
        # take every Job for missing (creating it again is harmless, but slow).
        if not (self.jobs.wait_synced(s.request_timeout) and self.pods.wait_synced(s.request_timeout)):
            log.warning("caches not synced after %.0fs; passes start anyway", s.request_timeout)
        for i in range(s.workers):
            thread = threading.Thread(target=self._work, name=f"reconcile-{i}", daemon=True)
            thread.start()
            self.workers.append(thread)
        if s.leader_election:
            self.elector = LeaderElector(self.api, LeaseSettings(
                namespace=s.lease_namespace, name=s.lease_name, identity=s.identity,
                request_timeout=min(s.request_timeout, 5.0)), self._started_leading, self._stopped_leading).start()
        else:
            self._started_leading()

    def shutdown(self) -> None:
        self.stopping.set()
        if self.elector:
            self.elector.stop()
        self.queue.close()
        if self.sweeps:
            self.sweeps.shutdown()
        self.jobs.stop()
        self.pods.stop()
        if self.device_infos:
            self.device_infos.stop()
        for thread in self.workers:
            thread.join(timeout=self.settings.request_timeout)
        self.events.flush(timeout=5.0)

    def _started_leading(self) -> None:
        self.leading.set()
        METRICS.leader.set(1)
        with self.lock:
            keys = list(self.known)
        for key in keys:  # whatever happened while we were not leading
            self.queue.add(key)

    def _stopped_leading(self) -> None:
        self.leading.clear()
        METRICS.leader.set(0)
        with self.lock:
            # Another leader writes status from now on: what we wrote last
            # says nothing about how new a watched body is (see _read_run).
            self.written.clear()

    # -- the workers ----------------------------------------------------------------
    def _work(self) -> None:
        while not self.stopping.is_set():
            key = self.queue.get(timeout=1.0)
            if key is None:
                continue
            again: Optional[float] = None
            try:
                if self.leading.is_set():
                    again = self._pass(key)
                    self.failures.pop(key, None)
            except Exception as exc:  # noqa: BLE001 - one bad run must not stop the others
                failures = self.failures.get(key, 0) + 1
                self.failures[key] = failures
                again = min(self.settings.retry_base * 2 ** (failures - 1), self.settings.retry_max)
                METRICS.reconcile_errors.labels(type(exc).__name__).inc()
                log.warning("reconciling %s/%s failed (%s); again in %.0fs", key[0], key[1], exc, again,
                            exc_info=not isinstance(exc, (ApiException, OSError)))
            finally:
                self.queue.done(key)
                self.last_pass_end = time.monotonic()
            if again is not None:
                self.queue.add_after(key, again)

    def _pass(self, key: Key) -> Optional[float]:
        """One pass over one run; when to pass again (None: only on an event)."""
        namespace, name = key
        started = time.monotonic()
        body, confirmed = self._read_run(key)
        if body is None:
            with self.lock:
                self.known.pop(key, None)
            METRICS.forget_run(namespace, name)
            return None
        if body["metadata"].get("deletionTimestamp"):
            return None
        old = body.get("status") or {}
        result = reconcile.run_pass(body, self.cluster, settings=self.reconcile_settings)
        changed = st.changed(old, result.status)
        if changed:
            # Merge patch of the status subresource; lists (conditions, stages)
            # are replaced whole, which is what we mean; None deletes a key.
            patch: Obj = {"status": changed}
            log.debug("%s/%s: status patch of %s", namespace, name, ", ".join(sorted(changed)))
            if not confirmed:
                # Only if the run is still as read: else 409, and it is read again.
                patch["metadata"] = {"resourceVersion": body["metadata"].get("resourceVersion")}
            try:
                patched = self.custom.patch_namespaced_custom_object_status(
                    names.GROUP, names.VERSION, namespace, names.PLURAL, name, patch,
                    _request_timeout=self.settings.request_timeout)
                with self.lock:
                    self.written[key] = patched.get("status") or {}
                    self.bodies[key] = patched
            except ApiException as exc:
                if exc.status == 404:
                    return None
                if exc.status == 409 and not confirmed:
                    # Another writer (an earlier leader) changed it since the
                    # watch showed it: pass again on a fresh read. What this
                    # pass created exists by name and is found then.
                    METRICS.reconcile_errors.labels("StatusConflict").inc()
                    with self.lock:
                        self.bodies.pop(key, None)
                    return 0.0
                METRICS.reconcile_errors.labels("StatusPatchFailed").inc()
                raise
        for event in result.events:
            self.events.post(body, event.type, event.reason, event.message)
        METRICS.reconcile_seconds.observe(time.monotonic() - started)
        return result.requeue_after

    def _read_run(self, key: Key) -> Tuple[Optional[Obj], bool]:
        """The run, without a GET when the watch has it; and whether it is
        confirmed current.

        kopf's watch may lag behind our own status patch; a pass on the older
        status would redo what the last one did. So once this process has
        patched a run, the watched body is used only when its status is
        exactly what our last patch returned (then it is at least that new,
        and any spec change in it is newer still): confirmed; otherwise GET
        it. A run this process has not patched yet (new, or since it became
        leader) is taken as watched, unconfirmed: its status patch carries
        the resourceVersion read, so a body older than the stored one is
        refused, never written over it. That saves one of the six requests
        of a new run's first pass, which at a burst of hundreds of new runs
        keep the API server busy. Status has one writer, the leader, whose
        passes of a run never overlap. None: the run is gone."""
        with self.lock:
            cached, written = self.bodies.get(key), self.written.get(key)
        # Never changed in place: run_pass copies the status it edits.
        if cached is not None and written is None:
            return cached, False
        if cached is not None and (cached.get("status") or {}) == written:
            return cached, True
        try:
            return cast(Obj, self.custom.get_namespaced_custom_object(
                names.GROUP, names.VERSION, key[0], names.PLURAL, key[1],
                _request_timeout=self.settings.request_timeout)), True
        except ApiException as exc:
            if exc.status == 404:
                return None, True
            raise

    # -- health ---------------------------------------------------------------------
    def unhealthy(self) -> Optional[str]:
        """Why the controller cannot make progress, or None."""
        dead = [t.name for t in self.workers if not t.is_alive()]
        if self.sweeps and not self.sweeps.alive():
            dead.append("sweeps")
        if dead:
            return f"reconcile workers died: {', '.join(dead)}"
        for group in (self.jobs, self.pods, self.device_infos):
            why = group.unhealthy() if group else None
            if why:
                return why
        # Stuck, not busy: work waits and no pass has ended for as long. At
        # hundreds of runs work may wait a while behind busy workers.
        waited = self.queue.oldest_wait()
        idle = time.monotonic() - self.last_pass_end
        if self.leading.is_set() and waited > self.settings.stall_after and idle > self.settings.stall_after:
            return f"a run has waited {waited:.0f}s for a reconcile worker and no pass ended for {idle:.0f}s: " \
                   f"the loop is stuck"
        return None


CONTROLLER: Optional[Controller] = None
# What the command line asked for (cli.run fills it before kopf starts).
LAUNCH: Dict[str, Any] = {"settings": None, "namespaces": [], "metrics_port": 8080}


def configure(kopf_settings: kopf.OperatorSettings) -> Controller:
    global CONTROLLER
    # No kopf bookkeeping on our objects: we use on.event only, which needs
    # neither a finalizer nor progress annotations; keep its prefix ours anyway.
    kopf_settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=names.ANNOTATION_PREFIX)
    kopf_settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=names.ANNOTATION_PREFIX, key="last-handled-configuration")
    kopf_settings.persistence.finalizer = f"{names.ANNOTATION_PREFIX}/finalizer"
    kopf_settings.posting.level = logging.ERROR
    kopf_settings.watching.server_timeout = 300
    kopf_settings.watching.client_timeout = 330
    port = int(LAUNCH["metrics_port"] or 0)
    if port:
        start_http_server(port, registry=METRICS.registry)
        log.info("metrics on :%d/metrics", port)
    CONTROLLER = Controller(LAUNCH["settings"], LAUNCH["namespaces"])
    CONTROLLER.start()
    return CONTROLLER


def cleanup() -> None:
    if CONTROLLER is not None:
        CONTROLLER.shutdown()

