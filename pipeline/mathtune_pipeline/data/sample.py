"""Choose the training rows: per-type quotas with upsampling (seed 000), per-type
counts (seed 001), a random fraction (seed 003), or everything.

Seeded with its own `random.Random`, and every choice is made in a fixed order
(types sorted, indices in row order), so the same rows and seed give the same
sample on any machine. The result is shuffled: a file grouped by type would
give the trainer whole batches of one type.
"""
import random
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import numpy as np

from ..errors import SpecError

MODES = ("none", "quota", "counts", "fraction")


def _by_type(kinds: Sequence[str]) -> Dict[str, List[int]]:
    """Row indices per type, in row order (numpy: 550k rows in a few ms, not 0.1 s)."""
    names = sorted(set(kinds))
    code = {name: i for i, name in enumerate(names)}
    codes = np.fromiter(map(code.__getitem__, kinds), dtype=np.int32, count=len(kinds))
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(names) + 1))
    return {name: order[bounds[i]:bounds[i + 1]].tolist() for i, name in enumerate(names)}


def _take(rng: random.Random, pool: List[int], n: int, upsample: bool) -> List[int]:
    if n <= len(pool):
        return rng.sample(pool, n)
    if not upsample:
        raise ValueError
    # Upsampling (seed 000: mass 100 -> 1000, simplify 45 -> 450): every row
    # the same number of times, the remainder drawn without repeats.
    whole, rest = divmod(n, len(pool))
    return pool * whole + rng.sample(pool, rest)


def validate(config: Mapping[str, Any]) -> Tuple[str, int, Dict[str, int], float]:
    field = "spec.data.sample"
    mode = config.get("mode", "none")
    if mode not in MODES:
        raise SpecError(f"{field}.mode", f"one of {', '.join(MODES)} (got {mode!r})")
    seed = config.get("seed", 42)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise SpecError(f"{field}.seed", "an integer")
    quotas = config.get("quotas") or {}
    if not isinstance(quotas, dict):
        raise SpecError(f"{field}.quotas", "a mapping of type -> rows")
    for kind, n in quotas.items():
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise SpecError(f"{field}.quotas.{kind}", "a whole number of rows >= 0")
    if mode in ("quota", "counts") and not quotas:
        raise SpecError(f"{field}.quotas", f"rows per type for mode {mode}")
    fraction = config.get("fraction", 1.0)
    if mode == "fraction" and (not isinstance(fraction, (int, float)) or isinstance(fraction, bool)
                               or not 0 < fraction <= 1):
        raise SpecError(f"{field}.fraction", "a number in (0, 1]")
    return mode, seed, dict(quotas), float(fraction)


def sample(kinds: Sequence[str], config: Mapping[str, Any]) -> Tuple[List[int], Dict[str, int]]:
    """Indices of the chosen rows (shuffled) and the rows chosen per type."""
    mode, seed, quotas, fraction = validate(config)
    rng = random.Random(seed)
    if mode == "none":
        chosen = list(range(len(kinds)))
    elif mode == "fraction":
        chosen = sorted(rng.sample(range(len(kinds)), round(len(kinds) * fraction)))
    else:
        groups = _by_type(kinds)
        chosen = []
        for kind in sorted(quotas):
            pool = groups.get(kind, [])
            n = quotas[kind]
            if n and not pool:
                raise SpecError(f"spec.data.sample.quotas.{kind}", f"a type present in the data (0 rows of {kind!r})")
            try:
                chosen.extend(_take(rng, pool, n, upsample=(mode == "quota")))
            except ValueError:
                raise SpecError(f"spec.data.sample.quotas.{kind}",
                                f"at most {len(pool)} rows (mode counts never repeats a row; use mode quota to upsample)"
                                ) from None
    rng.shuffle(chosen)
    out: Dict[str, int] = {}
    for i in chosen:
        out[kinds[i]] = out.get(kinds[i], 0) + 1
    return chosen, out
