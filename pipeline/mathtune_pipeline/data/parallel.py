"""Map a function over tasks in forked processes that inherit the parent's data.

Forked children see the parent's memory as it was at the fork (copy-on-write),
so large inputs (550k lines of text) are never pickled; only each task's
arguments and result cross a pipe, and callers keep those small (arrays of
codes and hashes, not strings: pickling 550k strings costs more than parsing
them). With one process, or where fork is unavailable, it runs in place.
"""
import multiprocessing
import os
from typing import Any, Callable, List, Sequence

# The data the workers inherit, set just before the fork.
SHARED: dict = {}


def cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def fork_map(fn: Callable[[Any], Any], tasks: Sequence[Any], processes: int, shared: dict) -> List[Any]:
    SHARED.clear()
    SHARED.update(shared)
    try:
        if processes <= 1 or len(tasks) <= 1 or "fork" not in multiprocessing.get_all_start_methods():
            return [fn(task) for task in tasks]
        # The parent works too: it runs the first task while the children run the rest,
        # so N tasks on N CPUs fork N - 1 children.
        with multiprocessing.get_context("fork").Pool(min(processes, len(tasks)) - 1) as pool:
            pending = [pool.apply_async(fn, (task,)) for task in tasks[1:]]
            first = fn(tasks[0])
            return [first] + [p.get() for p in pending]
    finally:
        SHARED.clear()
