"""Training time, padded against bucketed batches: the CPU example trained for real.

The same rows of examples/run-cpu.yaml (the demo data), tokenized twice:
`batching: padded` (every row seqLength + 1 tokens, the baseline) and
`bucketed` (the default). Then the train stage, as run-local runs it (msrun, 2
CPU ranks, MindFormers' Trainer), on each, alternating BENCH_REPEATS (default
1) times; the figure is wall seconds of the train command, MindSpore's graph
compilation included (bucketed compiles its symbolic shape once). On CPU the
tiny model's time is not all in the padded matmuls, so the ratio here is a
floor for what bucketing saves; bench_tokenize.py gives the token counts on
seed 000's recipe.
"""
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.bench.common import PIPELINE, REPO, env_with_pipeline, machine, measure, median_of  # noqa: E402

REPEATS = int(os.environ.get("BENCH_REPEATS", "1"))


def run_file(path: Path, mode: str) -> Path:
    doc = yaml.safe_load((REPO / "examples" / "run-cpu.yaml").read_text())
    doc["spec"]["data"]["batching"] = {"mode": mode}
    path.write_text(yaml.safe_dump(doc))
    return path


def main() -> int:
    env = env_with_pipeline()
    print(f"# {machine()}")
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        tmp = Path(tmp)
        runs, times, padding = {}, {"padded": [], "bucketed": []}, {}
        for mode in times:
            spec = run_file(tmp / f"{mode}.yaml", mode)
            run_dir = tmp / mode
            common = ["run-local", str(spec), "--run-dir", str(run_dir), "--data-dir", str(tmp / "data")]
            measure(PIPELINE + common + ["--stages", "prepare,tokenize"], env)
            counts = json.loads((run_dir / "tokenize" / "manifest.json").read_text())["counts"]
            padding[mode] = counts["paddingShare"]
            runs[mode] = (run_dir, PIPELINE + common + ["--stages", "train"])
        for _ in range(REPEATS):
            for mode, (run_dir, cmd) in runs.items():
                for stale in ("train", "train.work"):
                    shutil.rmtree(run_dir / stale, ignore_errors=True)
                times[mode].append(measure(cmd, env))
        steps = {mode: json.loads((run_dir / "train" / "manifest.json").read_text())["result"]["steps"]
                 for mode, (run_dir, _) in runs.items()}
    padded, bucketed = median_of(times["padded"], "seconds"), median_of(times["bucketed"], "seconds")
    print(f"command: {' '.join(runs['bucketed'][1])}")
    for mode, seconds in (("padded", padded), ("bucketed", bucketed)):
        print(f"  {mode:<9} train {seconds:6.1f} s  ({steps[mode]} steps; padding {padding[mode]:.1%} "
              f"of the computed tokens)")
    print(f"bucketed trains in {bucketed / padded:.2f}x the padded time (median of {REPEATS}), the same steps: "
          f"{'yes' if steps['padded'] == steps['bucketed'] else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
