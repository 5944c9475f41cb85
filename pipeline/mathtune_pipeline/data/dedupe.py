"""Drop repeated (problem, solution) pairs, keeping the first occurrence (seed 000)."""
from typing import List

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
