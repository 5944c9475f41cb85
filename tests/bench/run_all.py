"""Run every benchmark (tests/bench/bench_*.py but the cluster's bench_scale.py) in turn,
each in its own process.

Each benchmark prints its own figures as ratios against a baseline measured in
the same run; this runner only sequences them and fails if one fails.
"""
import subprocess
import sys
from pathlib import Path


def main() -> int:
    here = Path(__file__).resolve().parent
    failed = []
    # bench_scale.py drives the local cluster for minutes: `make bench-scale`
    # (with scale_write_cost.py, which the glob does not match).
    for bench in sorted(b for b in here.glob("bench_*.py") if b.name != "bench_scale.py"):
        print(f"\n=== {bench.name} ===", flush=True)
        if subprocess.call([sys.executable, str(bench)] + sys.argv[1:]) != 0:
            failed.append(bench.name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
