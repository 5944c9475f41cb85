"""List-then-watch caches of the runs' Jobs and pods, as client-go's informers.

One thread per (kind, namespace scope) lists the label-selected objects, then
watches from the list's resourceVersion; a watch that ends is resumed from
the last version seen, one the server calls expired (410 Gone) is replaced
by a fresh list. Every change calls `on_change(namespace, run)`, so exactly
the owning run is reconciled; reads come from memory, never the API server.

Objects are kept as the API server's JSON (camelCase, what `observe` reads),
trimmed to the fields the reconciler uses: 500 runs' Jobs with their pod
templates would cost megabytes for nothing.
"""
import json
import logging
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from . import device_health, names
from .types import Obj

log = logging.getLogger(__name__)

Key = Tuple[str, str]  # (namespace, name)
ListFn = Callable[..., Any]


# Only what the reconciler reads is kept, and only a change of what is kept
# wakes a run: a pod's IP, readiness or image ID, or a Job's count of ready
# pods, changes nothing a pass decides, and at hundreds of runs such events
# would be most of the passes.
_JOB_META = ("name", "namespace", "uid", "labels", "ownerReferences", "creationTimestamp", "deletionTimestamp")
_JOB_STATUS = ("conditions", "failed", "succeeded", "startTime", "completionTime")
_POD_META = ("name", "namespace", "uid", "labels", "creationTimestamp", "deletionTimestamp")
_POD_ANNOTATIONS = ("batch.kubernetes.io/job-completion-index", device_health.ANNOTATION_REAL)
_JOB_ANNOTATIONS = (names.ANNOTATION_ATTEMPT,)


def _kept_annotations(meta: Obj, keys: Tuple[str, ...]) -> Obj:
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k in keys}
    return {"annotations": annotations} if annotations else {}


def trim_job(job: Obj) -> Obj:
    meta, status = job.get("metadata") or {}, job.get("status") or {}
    return {"metadata": {**{k: meta[k] for k in _JOB_META if k in meta}, **_kept_annotations(meta, _JOB_ANNOTATIONS)},
            "spec": {"suspend": (job.get("spec") or {}).get("suspend")},
            "status": {k: status[k] for k in _JOB_STATUS if k in status}}


def _container(status: Obj) -> Obj:
    return {"name": status.get("name"), "state": status.get("state") or {}}


def trim_pod(pod: Obj) -> Obj:
    meta = pod.get("metadata") or {}
    kept = {**{k: meta[k] for k in _POD_META if k in meta}, **_kept_annotations(meta, _POD_ANNOTATIONS)}
    status = pod.get("status") or {}
    return {"metadata": kept, "spec": {"nodeName": (pod.get("spec") or {}).get("nodeName")}, "status": {
        "phase": status.get("phase"),
        "conditions": [c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"],
        "containerStatuses": [_container(c) for c in status.get("containerStatuses") or []],
        "initContainerStatuses": [_container(c) for c in status.get("initContainerStatuses") or []]}}


class Informer:
    """A label-selected cache of one kind in one scope (a namespace, or all)."""

    def __init__(self, kind: str, list_fn: ListFn, namespace: Optional[str], selector: str,
                 trim: Callable[[Obj], Obj], on_change: Callable[[str, str], None],
                 watch_timeout: int = 300, request_timeout: float = 30.0, index_label: Optional[str] = None,
                 route: Optional[Callable[[Obj], None]] = None):
        self.kind, self.list_fn, self.namespace, self.selector = kind, list_fn, namespace, selector
        self.trim, self.on_change = trim, on_change
        # For objects no run owns (a node's device health): who to wake is
        # route's to decide; by default the run its label names.
        self.route = route
        self.watch_timeout, self.request_timeout = watch_timeout, request_timeout
        self.store: Dict[Key, Obj] = {}
        # (namespace, value of index_label) -> names: a Job's pods without a
        # scan of every pod, which at hundreds of runs was a pass's main cost.
        self.index_label = index_label
        self.index: Dict[Key, Set[str]] = {}
        self.lock = threading.Lock()
        self.synced = threading.Event()
        self.stopping = threading.Event()
        self.thread: Optional[threading.Thread] = None

    # -- reading ----------------------------------------------------------------
    def get(self, namespace: str, name: str) -> Optional[Obj]:
        with self.lock:
            return self.store.get((namespace, name))

    def select(self, namespace: str, label: str, value: str) -> List[Obj]:
        with self.lock:
            if label == self.index_label:
                return [self.store[(namespace, name)] for name in self.index.get((namespace, value), ())]
            return [o for (ns, _), o in self.store.items()
                    if ns == namespace and ((o["metadata"].get("labels") or {}).get(label) == value)]

    def _indexed(self, key: Key, obj: Optional[Obj], add: bool) -> None:
        """Keep the index in step with the store (called holding the lock)."""
        if self.index_label is None or obj is None:
            return
        value = (obj["metadata"].get("labels") or {}).get(self.index_label)
        if value is None:
            return
        names_ = self.index.setdefault((key[0], value), set())
        if add:
            names_.add(key[1])
        else:
            names_.discard(key[1])
            if not names_:
                del self.index[(key[0], value)]

    # -- life -------------------------------------------------------------------
    def start(self) -> "Informer":
        self.thread = threading.Thread(target=self._run, name=f"informer-{self.kind}-{self.namespace or 'all'}",
                                       daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        # The thread is a daemon: it ends with the process. Closing its
        # response from here would wait for the read it is blocked in.
        self.stopping.set()

    def alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def _call(self, **kwargs: Any) -> Any:
        args = (self.namespace,) if self.namespace else ()
        return self.list_fn(*args, label_selector=self.selector, _preload_content=False, **kwargs)

    def _run(self) -> None:
        backoff = 0.5
        while not self.stopping.is_set():
            try:
                version = self._list()
                backoff = 0.5
                self._watch(version)
            except Exception as exc:  # noqa: BLE001 - an API server restart, a timeout: list again
                if self.stopping.is_set():
                    return
                log.warning("%s informer (%s): %s; listing again in %.1fs", self.kind, self.namespace or "all",
                            exc, backoff)
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, 30.0)

    def _list(self) -> str:
        resp = self._call(_request_timeout=self.request_timeout)
        body = json.loads(resp.data)
        fresh = {}
        for item in body.get("items") or []:
            trimmed = self.trim(item)
            meta = trimmed["metadata"]
            fresh[(meta.get("namespace") or self.namespace or "", meta["name"])] = trimmed
        with self.lock:
            old, self.store = self.store, fresh
            self.index = {}
            for key, obj in fresh.items():
                self._indexed(key, obj, True)
        self.synced.set()
        # Whatever changed while we were not watching: wake those runs.
        for key in set(old) | set(fresh):
            if old.get(key) != fresh.get(key):
                self._notify(fresh.get(key) or old[key])
        return str(body["metadata"]["resourceVersion"])

    def _watch(self, version: str) -> None:
        while not self.stopping.is_set():
            resp = self._call(watch=True, resource_version=version, allow_watch_bookmarks=True,
                              timeout_seconds=self.watch_timeout,
                              _request_timeout=(self.request_timeout, self.watch_timeout + 30))
            try:
                for line in iter_resp_lines(resp):
                    if not line:
                        continue
                    event = json.loads(line)
                    kind, obj = event.get("type"), event.get("object") or {}
                    if kind == "ERROR":
                        if obj.get("code") == 410:
                            return  # too old to resume: list again
                        raise ApiException(status=obj.get("code"), reason=obj.get("message"))
                    version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                    if kind == "BOOKMARK":
                        continue
                    self._apply(kind, obj)
            finally:
                resp.release_conn()

    def _apply(self, kind: str, obj: Obj) -> None:
        trimmed = self.trim(obj)
        meta = trimmed["metadata"]
        key = (meta.get("namespace") or self.namespace or "", meta["name"])
        with self.lock:
            before = self.store.get(key)
            self._indexed(key, before, False)
            if kind == "DELETED":
                self.store.pop(key, None)
            else:
                self.store[key] = trimmed
                self._indexed(key, trimmed, True)
        if kind == "DELETED" or before != trimmed:
            self._notify(trimmed)

    def find(self, keep: Callable[[Obj], bool]) -> List[Obj]:
        with self.lock:
            return [o for o in self.store.values() if keep(o)]

    def _notify(self, obj: Obj) -> None:
        if self.route is not None:
            self.route(obj)
            return
        meta = obj["metadata"]
        run = (meta.get("labels") or {}).get(names.LABEL_RUN)
        if run:
            self.on_change(meta.get("namespace") or self.namespace or "", run)


class Informers:
    """The informers of one kind across the watched namespaces, read as one."""

    def __init__(self, members: List[Informer]):
        self.members = members

    def _for(self, namespace: str) -> Optional[Informer]:
        for member in self.members:
            if member.namespace in (None, namespace):
                return member
        return None

    def get(self, namespace: str, name: str) -> Optional[Obj]:
        member = self._for(namespace)
        return member.get(namespace, name) if member else None

    def select(self, namespace: str, label: str, value: str) -> List[Obj]:
        member = self._for(namespace)
        return member.select(namespace, label, value) if member else []

    def find(self, keep: Callable[[Obj], bool]) -> List[Obj]:
        return [o for member in self.members for o in member.find(keep)]

    def start(self) -> None:
        for member in self.members:
            member.start()

    def stop(self) -> None:
        for member in self.members:
            member.stop()

    def wait_synced(self, timeout: float) -> bool:
        end = time.monotonic() + timeout
        return all(m.synced.wait(max(0.0, end - time.monotonic())) for m in self.members)

    def unhealthy(self) -> Optional[str]:
        for member in self.members:
            if not member.alive():
                return f"the {member.kind} watch of {member.namespace or 'all namespaces'} stopped"
        return None
