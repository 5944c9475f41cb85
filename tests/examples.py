"""The files of examples/ by kind: tests of runs read the MathFinetunes,
and a sweep (MathFinetuneSweep) is read by the sweep's tests."""
from pathlib import Path
from typing import List

import yaml

DIR = Path(__file__).resolve().parent.parent / "examples"


def _of_kind(kind: str) -> List[Path]:
    return sorted(p for p in DIR.glob("*.yaml") if yaml.safe_load(p.read_text()).get("kind") == kind)


RUNS = _of_kind("MathFinetune")
SWEEPS = _of_kind("MathFinetuneSweep")
