"""Posting a run's Events, aggregated as the kubelet's recorder does: the same
reason and message for the same run again bumps `count` and
`lastTimestamp` of the Event already posted instead of adding another, so
`kubectl describe` shows "(x12 over 3m)" rather than twelve rows."""
import datetime as _dt
import logging
import threading
from collections import OrderedDict
from typing import Tuple

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from . import names
from .types import Obj

log = logging.getLogger(__name__)

_Key = Tuple[str, str, str, str, str]  # namespace, run uid, type, reason, message


class EventRecorder:
    def __init__(self, api: client.ApiClient, request_timeout: float = 10.0, remember: int = 4096):
        self.core = client.CoreV1Api(api)
        self.request_timeout = request_timeout
        self.remember = remember
        self.posted: "OrderedDict[_Key, Tuple[str, int]]" = OrderedDict()  # key -> (Event name, count)
        self.lock = threading.Lock()

    def post(self, body: Obj, kind: str, reason: str, message: str) -> None:
        (log.warning if kind == "Warning" else log.info)(
            "[%s/%s] %s: %s", body["metadata"]["namespace"], body["metadata"]["name"], reason, message)
        meta = body["metadata"]
        message = message[:1024]
        key = (meta["namespace"], meta["uid"], kind, reason, message)
        now = _dt.datetime.now(_dt.timezone.utc)
        with self.lock:
            seen = self.posted.get(key)
        try:
            if seen and self._bump(meta["namespace"], seen[0], seen[1] + 1, now):
                self._remember(key, seen[0], seen[1] + 1)
                return
            created = self.core.create_namespaced_event(meta["namespace"], {
                "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
                "involvedObject": {"apiVersion": names.API_VERSION, "kind": names.KIND, "name": meta["name"],
                                   "namespace": meta["namespace"], "uid": meta["uid"],
                                   "resourceVersion": meta.get("resourceVersion")},
                "reason": reason, "message": message, "type": kind,
                "source": {"component": names.MANAGED_BY},
                "reportingComponent": names.MANAGED_BY, "reportingInstance": names.MANAGED_BY,
                "firstTimestamp": now, "lastTimestamp": now, "count": 1,
            }, _request_timeout=self.request_timeout)
            self._remember(key, created.metadata.name, 1)
        except ApiException as exc:
            # Events are best effort; the status carries the same facts.
            log.warning("cannot post event %s: %s %s", reason, exc.status, exc.reason)

    def _bump(self, namespace: str, name: str, count: int, now: _dt.datetime) -> bool:
        """False when the Event is gone (expired after its TTL): post anew."""
        try:
            self.core.patch_namespaced_event(name, namespace, {"count": count, "lastTimestamp": now},
                                             _request_timeout=self.request_timeout)
            return True
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise

    def _remember(self, key: _Key, name: str, count: int) -> None:
        with self.lock:
            self.posted[key] = (name, count)
            self.posted.move_to_end(key)
            while len(self.posted) > self.remember:
                self.posted.popitem(last=False)
