"""`mathtune-pipeline synth --rows 809993 --out train.json`: a contest-scale synthetic train.json.

For benchmarks and tests only: the real contest file is not ours to ship.
"""
import argparse
import sys
import time

from ..data.synth import write_synth
from ..data.types import CONTEST_ROWS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rows", type=int, default=CONTEST_ROWS, help=f"rows to write (default {CONTEST_ROWS}, the real file's)")
    parser.add_argument("--out", default="train.json", help="output JSON lines file (default train.json)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same file)")


def run(args: argparse.Namespace) -> int:
    if args.rows < 100:
        print("mathtune-pipeline synth: --rows: at least 100 (one row of each of the 15 types needs room)", file=sys.stderr)
        return 2
    start = time.monotonic()
    n = write_synth(args.out, args.rows, args.seed)
    print(f"wrote {n} rows to {args.out} in {time.monotonic() - start:.1f}s")
    return 0
