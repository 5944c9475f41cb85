"""A barrier that works on CPU, for MindFormers' checkpoint loading.

MindFormers synchronises ranks with `mindspore.communication.comm_func.barrier`
around checkpoint (pre)loading; its `Barrier` op has no CPU kernel
("Unsupported op [Barrier] on CPU"), and a one-number AllReduce issued from
that spot crashed the rank (SIGSEGV, measured). The ranks of a run share its
work directory, so the barrier is kept there with files: each rank writes
`<n>.<rank>` for its n-th barrier and waits until all ranks have. Every rank
calls the barriers in the same order, which is what makes n agree.
`install()` must run before MindFormers is imported: MindFormers binds
`barrier` by name at import time.
"""
import itertools
import time
from pathlib import Path

_calls = itertools.count()


def file_barrier(directory: Path, rank: int, size: int, timeout: float = 1800.0, interval: float = 0.05) -> None:
    n = next(_calls)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{n}.{rank}").touch()
    deadline = time.monotonic() + timeout
    while not all((directory / f"{n}.{r}").exists() for r in range(size)):
        if time.monotonic() > deadline:
            missing = [r for r in range(size) if not (directory / f"{n}.{r}").exists()]
            raise TimeoutError(f"barrier {n}: ranks {missing} never arrived ({directory})")
        time.sleep(interval)


def install(directory: Path) -> None:
    from mindspore.communication import comm_func, get_group_size, get_rank

    def barrier(group=None):  # noqa: ARG001 - MindFormers only uses the world group
        file_barrier(Path(directory), get_rank(), get_group_size())

    comm_func.barrier = barrier
