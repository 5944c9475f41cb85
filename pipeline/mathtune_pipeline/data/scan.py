"""One pass over contest JSON lines in a worker: parse, classify, fingerprint.

A worker returns per row only a type code and a fingerprint of the
(problem, solution) pair: small arrays that cross a pipe cheaply. The parent
dedupes on fingerprints and parses again only the rows it keeps in the end
(97k of 550k for seed 000), so the full text never travels between processes.
Fingerprints are Python's `hash` of the pair, the same in every forked worker;
rows whose fingerprints collide are compared on their real text (dedupe.py),
so a collision can never drop a row.
"""
from typing import Dict, List, Sequence, Tuple

import numpy as np

from . import loaders
from .classify import Classifier


def scan_lines(lines: Sequence[bytes], classifier: Classifier, type_codes: Dict[str, int], unwrap: bool):
    """(type codes uint16, fingerprints int64, valid mask bool, bad {index: why}, unwrapped count).

    `type_codes` maps every type the classifier can return to its code."""
    n = len(lines)
    codes = np.zeros(n, dtype=np.uint16)
    prints = np.zeros(n, dtype=np.int64)
    valid = np.ones(n, dtype=bool)
    bad: Dict[int, str] = {}
    parsed = loaders._parse_chunk(list(lines))
    if parsed is None:
        problems: List[str] = []
        solutions: List[str] = []
        for i, line in enumerate(lines):
            pair, why = loaders._contest_row(line)
            if pair is None:
                bad[i] = why
                valid[i] = False
                problems.append("")
                solutions.append("")
            else:
                problems.append(pair[0])
                solutions.append(pair[1])
    else:
        problems, solutions = parsed
    unwrapped = 0
    if unwrap:
        for i, q in enumerate(problems):
            if loaders._WRAP_START in q:
                inner = loaders.unwrap_prompt(q)
                if inner:
                    problems[i] = inner
                    unwrapped += 1
    codes[:] = np.fromiter(map(type_codes.__getitem__, classifier.classify_all(problems)), dtype=np.uint16, count=n)
    prints[:] = np.fromiter(map(hash, zip(problems, solutions)), dtype=np.int64, count=n)
    return codes, prints, valid, bad, unwrapped


def materialize(lines: Sequence[bytes], unwrap: bool) -> Tuple[List[str], List[str]]:
    """Problems and solutions of lines known to be good (the rows finally kept)."""
    parsed = loaders._parse_chunk(list(lines))
    if parsed is None:
        pairs = [loaders._contest_row(line)[0] for line in lines]
        problems, solutions = [p[0] for p in pairs], [p[1] for p in pairs]
    else:
        problems, solutions = parsed
    if unwrap:
        problems = [(loaders.unwrap_prompt(q) or q) if loaders._WRAP_START in q else q for q in problems]
    return problems, solutions
