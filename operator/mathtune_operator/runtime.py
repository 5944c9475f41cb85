"""Glue between kopf and the reconciler.

kopf watches MathFinetunes (`on.event`, which needs no finalizer) and tells
the `Runner` which runs exist. The Runner's own thread passes over every
known run every RECONCILE_INTERVAL seconds (at once after a create or a spec
change), patches status when it changed and posts the pass's Events.

Why not a kopf timer: kopf gives every object with a timer a finalizer, and a
finalizer makes a run undeletable (and its namespace stuck Terminating)
whenever the operator is not running. Nothing about deleting a run needs the
operator: its Jobs go by ownerReference and its claim is kept on purpose.
"""
import datetime as _dt
import logging
import threading
from typing import Dict, Optional, Tuple

import kopf
from kubernetes import client, config as k8s_config
from kubernetes.client.exceptions import ApiException
from prometheus_client import start_http_server

from . import children, config, names, reconcile
from . import status as st
from .metrics import METRICS
from .types import Obj

log = logging.getLogger("mathtune_operator")
METRICS_PORT = {"port": 8080}


def _api() -> client.ApiClient:
    try:
        k8s_config.load_incluster_config()
    except k8s_config.ConfigException:
        k8s_config.load_kube_config()
    return client.ApiClient()


class Runner:
    def __init__(self, interval: float = config.RECONCILE_INTERVAL):
        self.interval = interval
        self.known: Dict[Tuple[str, str], int] = {}  # (namespace, name) -> last generation seen
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.stop = threading.Event()
        self.thread: Optional[threading.Thread] = None
        self.api: Optional[client.ApiClient] = None
        self.settings = reconcile.Settings(progress_interval=config.PROGRESS_INTERVAL)

    # -- from kopf's watch ----------------------------------------------------
    def seen(self, event_type: Optional[str], namespace: str, name: str, generation: int) -> None:
        key = (namespace, name)
        with self.lock:
            if event_type == "DELETED":
                self.known.pop(key, None)
                METRICS.forget_run(namespace, name)
                return
            before = self.known.get(key)
            self.known[key] = generation
        if before is None or generation != before:
            self.wake.set()  # a new run or a spec change: do not wait for the next tick

    # -- the loop ---------------------------------------------------------------
    def start(self) -> None:
        self.api = _api()
        self.cluster = children.Cluster(self.api)
        self.custom = client.CustomObjectsApi(self.api)
        self.events = client.CoreV1Api(self.api)
        self.thread = threading.Thread(target=self._loop, name="mathtune-reconcile", daemon=True)
        self.thread.start()

    def shutdown(self) -> None:
        self.stop.set()
        self.wake.set()
        if self.thread:
            self.thread.join(timeout=30)

    def _loop(self) -> None:
        while not self.stop.is_set():
            self.wake.clear()
            with self.lock:
                keys = list(self.known)
            for namespace, name in keys:
                if self.stop.is_set():
                    return
                try:
                    self.reconcile_one(namespace, name)
                except Exception:  # noqa: BLE001 - one bad run must not stop the others
                    METRICS.reconcile_errors.labels("Exception").inc()
                    log.exception("reconciling %s/%s failed", namespace, name)
            self.wake.wait(self.interval)

    def reconcile_one(self, namespace: str, name: str) -> None:
        try:
            body = self.custom.get_namespaced_custom_object(names.GROUP, names.VERSION, namespace, names.PLURAL, name)
        except ApiException as exc:
            if exc.status == 404:
                with self.lock:
                    self.known.pop((namespace, name), None)
                METRICS.forget_run(namespace, name)
                return
            raise
        if body["metadata"].get("deletionTimestamp"):
            return
        old = body.get("status") or {}
        result = reconcile.run_pass(body, self.cluster, settings=self.settings)
        changed = st.changed(old, result.status)
        if changed:
            # Merge patch of the status subresource; lists (conditions, stages)
            # are replaced whole, which is what we mean.
            try:
                self.custom.patch_namespaced_custom_object_status(
                    names.GROUP, names.VERSION, namespace, names.PLURAL, name, {"status": changed})
            except ApiException as exc:
                if exc.status == 404:
                    return
                METRICS.reconcile_errors.labels("StatusPatchFailed").inc()
                log.warning("%s/%s: status patch failed: %s %s", namespace, name, exc.status, exc.reason)
                return
        for event in result.events:
            self.post_event(body, event)

    def post_event(self, body: Obj, event: reconcile.Event) -> None:
        (log.warning if event.type == "Warning" else log.info)(
            "[%s/%s] %s: %s", body["metadata"]["namespace"], body["metadata"]["name"], event.reason, event.message)
        meta = body["metadata"]
        now = _dt.datetime.now(_dt.timezone.utc)
        try:
            self.events.create_namespaced_event(meta["namespace"], {
                "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
                "involvedObject": {"apiVersion": names.API_VERSION, "kind": names.KIND, "name": meta["name"],
                                   "namespace": meta["namespace"], "uid": meta["uid"],
                                   "resourceVersion": meta.get("resourceVersion")},
                "reason": event.reason, "message": event.message[:1024], "type": event.type,
                "source": {"component": names.MANAGED_BY},
                "reportingComponent": names.MANAGED_BY, "reportingInstance": names.MANAGED_BY,
                "firstTimestamp": now, "lastTimestamp": now, "count": 1,
            })
        except ApiException as exc:
            # Events are best effort; the status carries the same facts.
            log.warning("cannot post event %s: %s %s", event.reason, exc.status, exc.reason)


RUNNER = Runner()


def configure(settings: kopf.OperatorSettings) -> None:
    # No kopf bookkeeping on our objects: we use on.event only, which needs
    # neither a finalizer nor progress annotations; keep its prefix ours anyway.
    import kopf

    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=names.ANNOTATION_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=names.ANNOTATION_PREFIX, key="last-handled-configuration")
    settings.persistence.finalizer = f"{names.ANNOTATION_PREFIX}/finalizer"
    settings.posting.level = logging.ERROR
    settings.watching.server_timeout = 300
    port = METRICS_PORT["port"]
    if port:
        start_http_server(port, registry=METRICS.registry)
        log.info("metrics on :%d/metrics", port)
    RUNNER.start()


def cleanup() -> None:
    RUNNER.shutdown()
