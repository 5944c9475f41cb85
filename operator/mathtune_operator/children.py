"""Talking to the API server about a run's children: create if absent, read a
pod's log, suspend, delete. Everything that does I/O for the reconciler lives
here, but for the Job and pod reads the informers serve (runtime.CachedCluster)."""
import logging
from typing import Optional

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from . import names
from .errors import ForeignObject
from .types import Obj

log = logging.getLogger(__name__)


class Cluster:
    def __init__(self, api_client: client.ApiClient, request_timeout: float = 30.0):
        self.api = api_client
        # Every call gives up after this: a hung request must not hold a worker.
        self.timeout = request_timeout
        self.core = client.CoreV1Api(api_client)
        self.batch = client.BatchV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)

    # -- create if absent ---------------------------------------------------
    def ensure(self, obj: Obj) -> bool:
        """Create `obj` unless it exists. True when this call created it.

        Names are deterministic, so "already exists" means an earlier pass (or
        an earlier operator process) made it: not an error, when it is ours.
        An owned object that exists with another owner is an earlier run's
        (ForeignObject). Jobs are checked by the reconcile loop itself.
        """
        kind, ns = obj["kind"], obj["metadata"]["namespace"]
        create = {
            "Job": self.batch.create_namespaced_job,
            "ConfigMap": self.core.create_namespaced_config_map,
            "PersistentVolumeClaim": self.core.create_namespaced_persistent_volume_claim,
            "Service": self.core.create_namespaced_service,
            "PodGroup": self._create_pod_group,
        }[kind]
        try:
            create(ns, obj, _request_timeout=self.timeout)
            return True
        except ApiException as exc:
            if exc.status != 409:
                raise
        read = {"ConfigMap": self.core.read_namespaced_config_map,
                "Service": self.core.read_namespaced_service,
                "PodGroup": self._read_pod_group}.get(kind)
        owner = [o["uid"] for o in obj["metadata"].get("ownerReferences") or []]
        if read and owner:
            existing = self.api.sanitize_for_serialization(
                read(obj["metadata"]["name"], ns, _request_timeout=self.timeout))
            if not any(o.get("uid") in owner for o in existing["metadata"].get("ownerReferences") or []):
                raise ForeignObject(kind, obj["metadata"]["name"])
        return False

    # Volcano's PodGroup (multi-node training's gang): a custom resource.
    def _create_pod_group(self, namespace: str, obj: Obj, **kwargs: object) -> object:
        return self.custom.create_namespaced_custom_object(
            names.VOLCANO_GROUP, names.VOLCANO_VERSION, namespace, "podgroups", obj, **kwargs)

    def _read_pod_group(self, name: str, namespace: str, **kwargs: object) -> object:
        return self.custom.get_namespaced_custom_object(
            names.VOLCANO_GROUP, names.VOLCANO_VERSION, namespace, "podgroups", name, **kwargs)

    # -- read -----------------------------------------------------------------
    # Jobs and pods are read from the informers' caches (runtime.CachedCluster).

    def pod_log_tail(self, namespace: str, pod: str, lines: int = 200) -> str:
        # Raw bytes: the generated client turns a log into the repr of bytes ("b'...'").
        resp = self.core.read_namespaced_pod_log(pod, namespace, container=names.CONTAINER, tail_lines=lines,
                                                 _preload_content=False, _request_timeout=self.timeout)
        try:
            return str(resp.data.decode("utf-8", errors="replace"))
        finally:
            resp.release_conn()

    def device_info(self, node: str) -> Optional[Obj]:
        """The node's device-info ConfigMap (device_health.py). Only the
        runtime's informer watches them (runtime.CachedCluster): without it,
        no node reports NPU faults."""
        return None

    def workload_of(self, namespace: str, job_uid: str) -> Optional[Obj]:
        """Kueue's Workload of a Job (labelled with the Job's uid), or None."""
        found = self.custom.list_namespaced_custom_object(
            names.KUEUE_GROUP, names.KUEUE_VERSION, namespace, "workloads",
            label_selector=f"{names.LABEL_KUEUE_JOB_UID}={job_uid}", _request_timeout=self.timeout)
        items = found.get("items") or []
        return items[0] if items else None

    # -- change -----------------------------------------------------------------
    def set_workload_active(self, namespace: str, name: str, active: bool) -> None:
        """Kueue's way to stop an admitted Job (it evicts the Workload, which
        suspends the Job) and to let it queue again: a Job's suspend is Kueue's."""
        self.custom.patch_namespaced_custom_object(
            names.KUEUE_GROUP, names.KUEUE_VERSION, namespace, "workloads", name, {"spec": {"active": active}},
            _request_timeout=self.timeout)

    def set_job_suspend(self, namespace: str, name: str, suspend: bool) -> None:
        self.batch.patch_namespaced_job(name, namespace, {"spec": {"suspend": suspend}}, _request_timeout=self.timeout)

    def delete_job(self, namespace: str, name: str, uid: Optional[str], foreground: bool = False) -> None:
        """Delete this Job (not a newer one of the same name: uid precondition).
        foreground: the Job stays, marked for deletion, until its pods are gone."""
        options = client.V1DeleteOptions(propagation_policy="Foreground" if foreground else "Background",
                                         preconditions=client.V1Preconditions(uid=uid) if uid else None)
        try:
            self.batch.delete_namespaced_job(name, namespace, body=options, _request_timeout=self.timeout)
        except ApiException as exc:
            if exc.status not in (404, 409):  # gone already, or already replaced
                raise

    def delete_jobs(self, namespace: str, run: str) -> int:
        """Delete the run's Jobs and (background propagation) their pods."""
        jobs = self.batch.list_namespaced_job(namespace, label_selector=f"{names.LABEL_RUN}={run}",
                                            _request_timeout=self.timeout).items
        for job in jobs:
            try:
                self.batch.delete_namespaced_job(job.metadata.name, namespace, propagation_policy="Background",
                                                _request_timeout=self.timeout)
            except ApiException as exc:
                if exc.status != 404:
                    raise
        return len(jobs)
