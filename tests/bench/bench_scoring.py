"""Scoring 10,000 predict outputs: the careful reader against the last-number rule alone.

The outputs are the contest's 400 real ones (base and fine-tuned, the real
fixtures), 25 times over. The baseline is what predict scored before the
reader: per output, the echo removed, the last number, the comparison, and
the exact answer (the same loop, without the reader). The figure is predict's
whole scoring (both rules and the truth) against it, best of 5 each,
alternating. Goals: at most 2.5x the baseline, and at least 10,000 outputs a
second: predict's report must not become noticeably slower. (For scale:
predict generates each output with up to `maxNewTokens` forward passes; the
reader's share of a predict stage is a fraction of a second per 10,000
outputs.)

    .venv/bin/python tests/bench/bench_scoring.py
"""
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "pipeline"))
from hack.fixtures import store  # noqa: E402
from mathtune_pipeline.data.classify import Classifier  # noqa: E402
from mathtune_pipeline.scoring import answers, math_accuracy  # noqa: E402
from tests.bench.common import Goals, machine  # noqa: E402

COPIES = 25
GOAL_RATIO = 2.5
GOAL_RATE = 10_000


def inputs():
    missing = store.missing(["contest/data_200_random.jsonl", "contest/predictions_200_base.txt",
                             "contest/predictions_200_finetuned.txt"])
    if missing:
        raise SystemExit(f"bench_scoring needs the real fixtures ({', '.join(missing)}): run `make fixtures`")
    rows = [json.loads(line) for line in
            store.path("contest/data_200_random.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    problems, solutions, outputs = [], [], []
    for name in ("base", "finetuned"):
        texts = math_accuracy.read_predict_output(store.path(f"contest/predictions_200_{name}.txt"))
        problems += [r["problem"] for r in rows]
        solutions += [r["solution"] for r in rows]
        outputs += texts
    return problems * COPIES, solutions * COPIES, outputs * COPIES


def last_number_only(problems, solutions, outputs, classify) -> int:
    """predict's scoring before the reader: the last number, against the reference and the truth."""
    correct = 0
    for prompt, solution, output in zip(problems, solutions, outputs):
        question = math_accuracy.question_of(prompt)
        kind = classify(question)
        got = answers.extract(answers.strip_echo(output, prompt=prompt, question=question), kind)
        correct += answers.is_correct(got, answers.extract(solution, kind))
        exact = math_accuracy.exact_answer(kind, question)
        if exact is not None:
            answers.is_true(got, exact)
    return correct


def best_of(fn, repeats=3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    problems, solutions, outputs = inputs()
    classify = Classifier()
    print(f"# {machine()}; {len(outputs):,} outputs")
    baseline, reader = [], []
    for _ in range(5):
        baseline.append(best_of(lambda: last_number_only(problems, solutions, outputs, classify), 1))
        reader.append(best_of(lambda: math_accuracy.score(problems, solutions, outputs, classify=classify), 1))
    base_s, reader_s = min(baseline), min(reader)
    ratio, rate = reader_s / base_s, len(outputs) / reader_s
    goals = Goals("bench_scoring")
    print(f"last-number rule only (baseline): {base_s:.2f} s ({len(outputs) / base_s:,.0f} outputs/s)")
    print(f"predict's scoring (reader + contest rule + truth): {reader_s:.2f} s ({rate:,.0f} outputs/s)")
    print(f"ratio {ratio:.2f}x the baseline; goals: {goals.check(f'<= {GOAL_RATIO}x', ratio <= GOAL_RATIO)}; "
          f"{goals.check(f'>= {GOAL_RATE:,} outputs/s', rate >= GOAL_RATE)}")
    return goals.exit_code()


if __name__ == "__main__":
    sys.exit(main())
