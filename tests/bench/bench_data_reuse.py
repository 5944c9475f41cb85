"""A sweep's data stages on one work volume: 8 runs with the same data recipe, one after another.

Each run does prepare and tokenize on seed 000's recipe (the 809,993-row
synthetic train.json, 97,450 rows sampled, chain of thought, the real Llama 3
tokenizer, seqLength 512, 2 shards); the runs differ only in training settings
that do not touch the data (learning rate, LoRA rank), as a sweep's do. The
first run finds the work volume's data cache empty and builds: it is the cold
run; the other seven link its entry in (data/recipe_cache.py). The stages run
through their Python API in this process, so the figures are the stages' own
time (a Job adds the same process start-up to every run, cached or not).
Figure: the 8 runs' total data-stage time over the cold run's, the median (and
worst) of BENCH_REPEATS (default 3) sweeps, each on a fresh volume.
Also measured in each round, not gated: a cold run as every run was before the
cache (its dataPath not a volume: nothing looked up, nothing published), to
show the cold run with the cache costs what it did without. Two cold runs on
this shared machine differ by 5% on a quiet day and by 70% when another job
starts, so a ratio across two of them measures the machine; the cold run and
the seven reuses of one sweep ran together.
Goal: <= 1.1x (8 runs cost about what one costs).
"""
import contextlib
import io
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.conftest import LLAMA3_TOKENIZER  # noqa: E402
from tests.specs import whole  # noqa: E402
from tests.bench.common import SEED000_QUOTAS, Goals, machine, synth_file  # noqa: E402

REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
RUNS = 8
GOAL = 1.1


def spec_of(source: Path, data_path: Path, run: int):
    from mathtune_pipeline.spec import parse

    return parse(whole({
        "model": {"tokenizer": {"uri": str(LLAMA3_TOKENIZER), "format": "hf-json"}},
        "data": {"source": {"uri": str(source), "format": "contest-jsonl"},
                 "sample": {"mode": "quota", "seed": 42, "quotas": SEED000_QUOTAS},
                 "chainOfThought": {"enabled": True, "decimals": 2}, "template": {"name": "alpaca"},
                 "seqLength": 512, "shards": 2},
        "lora": {"rank": 8 * (1 + run % 2)},
        "training": {"batchSize": 32, "lrSchedule": {"learningRate": 1e-4 * (1 + run)}},
        "resources": {"npusPerNode": 4, "parallel": {"dataParallel": 1, "modelParallel": 4, "pipelineStage": 1}},
        "storage": {"dataPath": str(data_path)}}))


def data_stages(spec, run_dir: Path, name: str):
    """prepare then tokenize of one run; (seconds, prepare's result, tokenize's result)."""
    from mathtune_pipeline.stages.prepare import prepare
    from mathtune_pipeline.stages.tokenize import tokenize

    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):   # the stages' lines (reused ..., waiting ...), not the figures
        prepared = prepare(spec, run_dir, run_name=name)
        tokenized = tokenize(spec, run_dir, run_name=name)
    return time.perf_counter() - start, prepared, tokenized


def one_round(source: Path, tmp: Path, cold_first: bool):
    """A cold run without a volume and the sweep on a fresh one, in either order (what ran first
    must not decide the figure); (cold seconds, each sweep run's seconds)."""
    def cold_run() -> float:
        return data_stages(spec_of(source, tmp / "no-volume", 0), tmp / "cold" / "run", "cold")[0]

    cold = cold_run() if cold_first else 0.0
    volume = tmp / "volume"
    volume.mkdir()
    times = []
    for run in range(RUNS):
        name = f"sweep-{run}"
        seconds, prepared, tokenized = data_stages(spec_of(source, volume, run), volume / "runs" / name, name)
        reused = [bool(r.get("reused")) for r in (prepared, tokenized)]
        if reused != [run > 0] * 2 or prepared["cacheKey"] != tokenized["cacheKey"]:
            raise SystemExit(f"{name}: expected {'a reuse' if run else 'a build'} of both stages under one key, "
                             f"got prepare {prepared.get('reused')}, tokenize {tokenized.get('reused')}")
        times.append(seconds)
    return cold if cold_first else cold_run(), times


def main() -> int:
    if not LLAMA3_TOKENIZER.is_file():
        raise SystemExit(f"missing the real Llama 3 tokenizer {LLAMA3_TOKENIZER}: run `make tokenizer`")
    source = synth_file()
    print(f"# {machine()}; input {source} ({source.stat().st_size / 2**20:.0f} MiB, 809,993 rows)")
    rounds = []
    for i in range(REPEATS):
        with tempfile.TemporaryDirectory(prefix="bench-data-reuse-") as tmp:
            rounds.append(one_round(source, Path(tmp), cold_first=i % 2 == 0))
    ratios = sorted(sum(times) / times[0] for _, times in rounds)
    median = ratios[len(ratios) // 2]
    builds = sorted(times[0] / cold for cold, times in rounds)
    for i, (cold, times) in enumerate(rounds, 1):
        hits = times[1:]
        print(f"round {i}: first run (cold, builds) {times[0]:6.2f} s, {len(hits)} reuses {sum(hits):5.2f} s "
              f"({1000 * max(hits):.0f} ms at most): {RUNS} runs {sum(times):6.2f} s = {sum(times) / times[0]:.3f}x "
              f"the cold run; a cold run without the cache {cold:6.2f} s")
    print(f"{RUNS} runs of one data recipe: {median:.3f}x one cold run (median of {REPEATS}; worst {ratios[-1]:.3f}x); "
          f"without the cache: {RUNS}x")
    print(f"the cold run with the cache / without it: {builds[len(builds) // 2]:.3f}x (median; not gated: two cold "
          f"runs differ by the machine's noise)")
    goals = Goals("bench_data_reuse")
    print("goals: " + goals.check(f"{RUNS} runs <= {GOAL}x one cold run", median <= GOAL))
    return goals.exit_code()


if __name__ == "__main__":
    sys.exit(main())
