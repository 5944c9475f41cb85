"""Posting a run's Events, aggregated as the kubelet's recorder does: the same
reason and message for the same run again bumps `count` and
`lastTimestamp` of the Event already posted instead of adding another, so
`kubectl describe` shows "(x12 over 3m)" rather than twelve rows.

Asynchronous, as client-go's recorder: a pass hands its Events over and goes
on, so a reconcile worker never waits on an Event (at hundreds of runs they
were half a stage boundary's requests). A few sender threads post them;
each run's Events go to one sender, in order (its aggregation needs that),
and a slow run holds only the runs that share its sender. One sender was
too few: at 500 runs it fell a minute behind. Best effort, as Events are:
the status carries the same facts; an operator killed with Events still
queued loses them."""
import datetime as _dt
import logging
import queue
import threading
import time
import zlib
from collections import OrderedDict
from typing import List, Optional, Tuple

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from . import names
from .types import Obj

log = logging.getLogger(__name__)

_Key = Tuple[str, str, str, str, str]  # namespace, run uid, type, reason, message
_Item = Tuple[Obj, str, str, str, _dt.datetime]


class EventRecorder:
    def __init__(self, api: client.ApiClient, request_timeout: float = 10.0, remember: int = 4096,
                 backlog: int = 10000, senders: int = 4):
        self.core = client.CoreV1Api(api)
        self.request_timeout = request_timeout
        self.remember = max(1, remember // senders)
        # Per sender: key -> (Event name, count); only that sender touches it.
        self.posted: "List[OrderedDict[_Key, Tuple[str, int]]]" = [OrderedDict() for _ in range(senders)]
        # Per sender: (the run's namespace, name, uid and version; type, reason, message; when)
        self.pending: "List[queue.Queue[Optional[_Item]]]" = [
            queue.Queue(maxsize=max(1, backlog // senders)) for _ in range(senders)]
        self.threads = [threading.Thread(target=self._deliver, args=(i,), name=f"events-{i}", daemon=True)
                        for i in range(senders)]
        for thread in self.threads:
            thread.start()

    def post(self, body: Obj, kind: str, reason: str, message: str) -> None:
        """Log the Event now; post it soon, from the run's sender thread."""
        (log.warning if kind == "Warning" else log.info)(
            "[%s/%s] %s: %s", body["metadata"]["namespace"], body["metadata"]["name"], reason, message)
        try:
            # Only what the Event names: a run's whole metadata (managed
            # fields and all) held in a backlog of thousands costs megabytes.
            meta = body["metadata"]
            run = {k: meta.get(k) for k in ("namespace", "name", "uid", "resourceVersion")}
            run["kind"] = body.get("kind") or names.KIND  # a MathFinetune, or a MathFinetuneSweep
            shard = self.pending[zlib.crc32(f"{run['namespace']}/{run['uid']}".encode()) % len(self.pending)]
            shard.put_nowait((run, kind, reason, message, _dt.datetime.now(_dt.timezone.utc)))
        except queue.Full:
            log.warning("event backlog full (%d): %s not posted", shard.maxsize, reason)

    def flush(self, timeout: float) -> None:
        """Post what is queued (at shutdown), waiting at most `timeout` in
        all (a full backlog and an API server away must not hold shutdown)."""
        deadline = time.monotonic() + timeout
        for shard in self.pending:
            try:
                shard.put(None, timeout=max(0.0, deadline - time.monotonic()))
            except queue.Full:
                pass
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _deliver(self, sender: int) -> None:
        while True:
            item = self.pending[sender].get()
            if item is None:
                return
            try:
                self._post(sender, *item)
            except Exception as exc:  # noqa: BLE001 - one Event must not stop the others
                log.warning("cannot post event %s: %s", item[2], exc)

    def _post(self, sender: int, meta: Obj, kind: str, reason: str, message: str, now: _dt.datetime) -> None:
        message = message[:1024]
        key = (meta["namespace"], meta["uid"], kind, reason, message)
        seen = self.posted[sender].get(key)
        try:
            if seen and self._bump(meta["namespace"], seen[0], seen[1] + 1, now):
                self._remember(sender, key, seen[0], seen[1] + 1)
                return
            created = self.core.create_namespaced_event(meta["namespace"], {
                "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
                "involvedObject": {"apiVersion": names.API_VERSION, "kind": meta["kind"], "name": meta["name"],
                                   "namespace": meta["namespace"], "uid": meta["uid"],
                                   "resourceVersion": meta.get("resourceVersion")},
                "reason": reason, "message": message, "type": kind,
                "source": {"component": names.MANAGED_BY},
                "reportingComponent": names.MANAGED_BY, "reportingInstance": names.MANAGED_BY,
                "firstTimestamp": now, "lastTimestamp": now, "count": 1,
            }, _request_timeout=self.request_timeout)
            self._remember(sender, key, created.metadata.name, 1)
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

    def _remember(self, sender: int, key: _Key, name: str, count: int) -> None:
        posted = self.posted[sender]
        posted[key] = (name, count)
        posted.move_to_end(key)
        while len(posted) > self.remember:
            posted.popitem(last=False)
