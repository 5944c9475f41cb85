"""Glue between kopf and the reconciler: settings, the metrics endpoint, and
turning a pass into a status patch and Events."""
import copy
import logging
import threading
from typing import Optional

import kopf
from kubernetes import client, config as k8s_config
from prometheus_client import start_http_server

from . import children, config, names, reconcile
from . import status as st
from .metrics import METRICS

log = logging.getLogger(__name__)
_cluster: Optional[children.Cluster] = None
_lock = threading.Lock()
METRICS_PORT = {"port": 8080}


def configure(settings: kopf.OperatorSettings) -> None:
    # Kopf's bookkeeping under our own prefix, in annotations only: status
    # holds exactly the fields the CRD declares.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=names.ANNOTATION_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=names.ANNOTATION_PREFIX, key="last-handled-configuration")
    settings.persistence.finalizer = f"{names.ANNOTATION_PREFIX}/finalizer"
    # Our own Events say what happened; kopf's per-pass log lines would flood them.
    settings.posting.level = logging.ERROR
    settings.watching.server_timeout = 300
    port = METRICS_PORT["port"]
    if port:
        start_http_server(port, registry=METRICS.registry)
        log.info("metrics on :%d/metrics", port)


def cluster() -> children.Cluster:
    global _cluster
    with _lock:
        if _cluster is None:
            try:
                k8s_config.load_incluster_config()
            except k8s_config.ConfigException:
                k8s_config.load_kube_config()
            _cluster = children.Cluster(client.ApiClient())
        return _cluster


SETTINGS = reconcile.Settings(progress_interval=config.PROGRESS_INTERVAL)


def reconcile_run(body, patch, logger) -> None:
    plain = copy.deepcopy(dict(body))
    plain["status"] = copy.deepcopy(dict(body.get("status") or {}))
    try:
        result = reconcile.run_pass(plain, cluster(), settings=SETTINGS)
    except Exception:
        METRICS.reconcile_errors.labels("Exception").inc()
        raise
    # Patch status only when it changed; lists (conditions, stages) whole.
    for key, value in st.changed(plain["status"], result.status).items():
        patch.status[key] = value
    for event in result.events:
        kopf.event(body, type=event.type, reason=event.reason, message=event.message)
        (logger.warning if event.type == "Warning" else logger.info)("%s: %s", event.reason, event.message)


def forget_run(namespace: str, name: str) -> None:
    METRICS.forget_run(namespace, name)
