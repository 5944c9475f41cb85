"""Drop repeated (problem, solution) pairs, keeping the first occurrence (seed 000)."""
from typing import Callable, List, Sequence

import numpy as np

from .loaders import Rows


def dedupe(rows: Rows) -> int:
    """Dedupe `rows` in place on (instruction, input, output); returns how many were dropped."""
    before = len(rows)
    if any(rows.input):
        keys = list(zip(rows.instruction, rows.input, rows.output))
    else:
        keys = list(zip(rows.instruction, rows.output))
    first = dict.fromkeys(keys)
    if len(first) == before:
        return 0
    seen: dict = {}
    keep: List[int] = []
    for i, key in enumerate(keys):
        if key not in seen:
            seen[key] = None
            keep.append(i)
    rows.instruction = [rows.instruction[i] for i in keep]
    rows.input = [rows.input[i] for i in keep]
    rows.output = [rows.output[i] for i in keep]
    return before - len(keep)


def first_by_fingerprint(prints: np.ndarray, valid: np.ndarray,
                         pairs_of: Callable[[np.ndarray], Sequence[tuple]]) -> np.ndarray:
    """Indices of the first row of each distinct pair, in row order.

    `prints` are fingerprints (hashes) of the pairs; rows sharing one are
    compared on their real pairs, fetched with `pairs_of(indices)`, so two
    different pairs with the same fingerprint are both kept.
    """
    idx = np.flatnonzero(valid)
    if len(idx) == 0:
        return idx
    h = prints[idx]
    order = np.argsort(h, kind="stable")       # stable: the first of equal prints comes first
    hs = h[order]
    starts = np.flatnonzero(np.r_[True, hs[1:] != hs[:-1]])
    sizes = np.diff(np.r_[starts, len(hs)])
    keep = [idx[order[starts[sizes == 1]]]]
    for start, size in zip(starts[sizes > 1], sizes[sizes > 1]):
        members = np.sort(idx[order[start:start + size]])
        firsts: dict = {}
        for i, pair in zip(members, pairs_of(members)):
            firsts.setdefault(pair, i)                # pair -> its first row
        keep.append(np.fromiter(firsts.values(), dtype=np.int64, count=len(firsts)))
    return np.sort(np.concatenate(keep))
