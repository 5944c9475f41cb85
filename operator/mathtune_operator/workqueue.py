"""A keyed work queue, as client-go's: each run is queued at most once, and
handed to at most one worker at a time.

A key added while it is being worked on is queued again when that pass ends
(the pass may have read state from before the change). A key added with a
delay becomes ready at the earliest time asked for. Threads only; no I/O.

Two lanes, each first in, first out. `urgent` keys (a run whose Job or pod
just changed: a stage may have ended and the next wait for its Job) go
before the others (new runs, spec changes, timed passes). So a burst of new
runs cannot make every running run's next stage wait behind it; and the
others never starve: up to `reserved` workers at a time may always take
them, urgent work or not, and any worker takes them when nothing is urgent.
A key added to both lanes is urgent.
"""
import heapq
from collections import deque
import threading
import time
from typing import Callable, Deque, Dict, Generic, Hashable, List, Optional, Tuple, TypeVar

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 on_taken: Optional[Callable[[float], None]] = None, reserved: int = 1):
        self._clock = clock
        self._on_taken = on_taken  # seconds a key waited, ready, for a worker
        self._reserved = reserved  # workers the other lane may always hold
        self._cond = threading.Condition()
        self._other: Deque[K] = deque()  # the other lane: keys ready now, each once
        self._urgent: Deque[K] = deque()  # the urgent lane
        self._queued: Dict[K, bool] = {}  # key in a lane -> urgent
        self._active: Dict[K, bool] = {}  # key a worker holds -> taken from the urgent lane
        self._again: Dict[K, bool] = {}  # added while active -> urgent: queue when done
        self._delayed: List[Tuple[float, int, K]] = []  # (due, seq, key) heap
        self._due: Dict[K, float] = {}  # earliest due time per delayed key
        self._seq = 0
        self._closed = False
        self._waiting_since: Dict[K, float] = {}  # when a key became ready

    # -- adding ---------------------------------------------------------------
    def add(self, key: K, urgent: bool = False) -> None:
        with self._cond:
            self._add_locked(key, urgent)

    def add_after(self, key: K, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        with self._cond:
            due = self._clock() + delay
            if key in self._due and self._due[key] <= due:
                return  # an earlier wake-up is already booked
            self._due[key] = due
            self._seq += 1
            heapq.heappush(self._delayed, (due, self._seq, key))
            self._cond.notify()

    def _add_locked(self, key: K, urgent: bool = False) -> None:
        if key in self._active:
            self._again[key] = self._again.get(key, False) or urgent
            return
        if key in self._queued:
            if urgent and not self._queued[key]:  # waiting in the other lane: move it up
                self._other.remove(key)
                self._queued[key] = True
                self._urgent.append(key)
            return
        self._queued[key] = urgent
        (self._urgent if urgent else self._other).append(key)
        self._waiting_since.setdefault(key, self._clock())
        self._cond.notify()

    def forget(self, key: K) -> None:
        """Drop a key's pending delayed wake-up (the run is gone)."""
        with self._cond:
            self._due.pop(key, None)

    # -- taking ---------------------------------------------------------------
    def get(self, timeout: Optional[float] = None) -> Optional[K]:
        """The next ready key, marked active; None when closed or timed out."""
        end = None if timeout is None else self._clock() + timeout
        with self._cond:
            while True:
                if self._closed:
                    return None
                self._promote_due_locked()
                lane = self._next_lane_locked()
                if lane is not None:
                    key = lane.popleft()
                    del self._queued[key]
                    since = self._waiting_since.pop(key, None)
                    self._active[key] = lane is self._urgent
                    if self._on_taken is not None and since is not None:
                        self._on_taken(self._clock() - since)
                    return key
                wait = None if not self._delayed else max(0.0, self._delayed[0][0] - self._clock())
                if end is not None:
                    left = end - self._clock()
                    if left <= 0:
                        return None
                    wait = left if wait is None else min(wait, left)
                self._cond.wait(wait)

    def _next_lane_locked(self) -> Optional[Deque[K]]:
        others_held = sum(1 for urgent in self._active.values() if not urgent)
        if self._other and others_held < self._reserved:
            return self._other
        if self._urgent:
            return self._urgent
        return self._other or None

    def done(self, key: K) -> None:
        with self._cond:
            self._active.pop(key, None)
            if key in self._again:
                self._add_locked(key, self._again.pop(key))

    def _promote_due_locked(self) -> None:
        now = self._clock()
        while self._delayed and self._delayed[0][0] <= now:
            due, _, key = heapq.heappop(self._delayed)
            if self._due.get(key) != due:
                continue  # superseded by an earlier booking, or forgotten
            del self._due[key]
            self._add_locked(key)

    # -- life and health ----------------------------------------------------------
    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def oldest_wait(self) -> float:
        """Seconds the longest-waiting ready key has waited (0 when none):
        grows without bound only if no worker takes work."""
        with self._cond:
            self._promote_due_locked()
            if not self._waiting_since:
                return 0.0
            return self._clock() - min(self._waiting_since.values())

    def __len__(self) -> int:
        with self._cond:
            return len(self._other) + len(self._urgent)
