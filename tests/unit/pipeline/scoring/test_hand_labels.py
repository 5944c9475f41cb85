"""The careful reader against 400 hand-graded real outputs.

tests/data/math_hand_labels.jsonl holds one label per row of the contest's
200 test rows, for the base Llama3-8B's predict output and the fine-tuned
one's (the real fixtures). Each was made by reading the output against the
question and the reference solution, with no scorer run: the verdict
(correct within the contest's 0.01), the answer the model committed to, the
true answer computed from the question, one line why, and whether a careful
person could grade it either way. The grading conventions the readers
followed are in docs/answer-reader.md.

The reader is held to at least 99% agreement; every disagreement is printed,
and so are the rows marked ambiguous. The same holds with the rows shuffled
and with the prompt template changed: the reader's rules are about answers,
not about one template's or one row order's habits.
"""
import json
import random
from pathlib import Path

import pytest

from mathtune_pipeline.data.classify import Classifier
from mathtune_pipeline.scoring import math_accuracy

LABELS = Path(__file__).resolve().parents[3] / "data" / "math_hand_labels.jsonl"
SETS = ("base", "finetuned")
AGREEMENT = 0.99


@pytest.fixture(scope="module")
def labels():
    rows = [json.loads(line) for line in LABELS.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert sorted((r["set"], r["row"]) for r in rows) == [(s, i) for s in SETS for i in range(200)]
    return {(r["set"], r["row"]): r for r in rows}


@pytest.fixture(scope="module")
def contest(real_fixtures):
    lines = (real_fixtures / "contest" / "data_200_random.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    outputs = {name: math_accuracy.read_predict_output(real_fixtures / "contest" / f"predictions_200_{name}.txt")
               for name in SETS}
    return rows, outputs


def _verdicts(problems, solutions, outputs):
    """The reader's verdict per row, through the scorer predict uses (misses are the wrong rows)."""
    scored = math_accuracy.score(problems, solutions, outputs, classify=Classifier(), keep_misses=len(outputs))
    wrong = {m["index"]: m for m in scored["misses"]}
    return [i not in wrong for i in range(len(outputs))], wrong, scored


def _agreement(name, verdicts, wrong, labels, order):
    disagree = []
    for position, row in enumerate(order):
        label = labels[(name, row)]
        if verdicts[position] != (label["label"] == "correct"):
            miss = wrong.get(position, {})
            disagree.append(f"{name} row {row}: reader {'correct' if verdicts[position] else 'wrong'} "
                            f"({miss.get('extracted')}, {miss.get('readBy')}), hand label {label['label']} "
                            f"({label['model_answer']}: {label['why']})")
    return disagree


@pytest.mark.parametrize("name", SETS)
def test_the_reader_agrees_with_the_hand_labels(name, labels, contest, capsys):
    rows, outputs = contest
    verdicts, wrong, _ = _verdicts([r["problem"] for r in rows], [r["solution"] for r in rows], outputs[name])
    disagree = _agreement(name, verdicts, wrong, labels, range(200))
    ambiguous = [f"{name} row {i}: labelled {labels[(name, i)]['label']}: {labels[(name, i)]['ambiguous_why']}"
                 for i in range(200) if labels[(name, i)]["ambiguous"]]
    with capsys.disabled():
        print(f"\n{name}: the reader agrees with {200 - len(disagree)}/200 hand labels")
        for line in disagree:
            print("  disagreement:", line)
        for line in ambiguous:
            print("  either way:", line)
    assert (200 - len(disagree)) / 200 >= AGREEMENT, "\n".join(disagree)


def test_the_contest_rule_disagrees_where_the_model_rambles(labels, contest):
    """Why the reader exists: the last-number rule misreads the base model's
    outputs, which state an answer and then ramble (a right answer counted as
    wrong ~7% of 400 rows); the reader's figure is the hand labels' own."""
    rows, outputs = contest
    scored = math_accuracy.score([r["problem"] for r in rows], [r["solution"] for r in rows], outputs["base"],
                                 classify=Classifier())
    hand = sum(labels[("base", i)]["label"] == "correct" for i in range(200))
    assert scored["correct"] == hand
    assert scored["contestRule"]["correct"] < hand - 20


def _retemplated(problem: str, output: str):
    """The same row asked with another template, as predict scores it: the
    bare question, and an output that echoes a plain `问题：…` / `答案：` prompt
    instead of the alpaca one (the base model echoes only the question:
    unchanged)."""
    question = math_accuracy.question_of(problem)
    prompt = f"问题：{question}\n答案："
    return question, (prompt + output[len(problem):] if output.startswith(problem) else output)


@pytest.mark.parametrize("name", SETS)
def test_shuffled_and_retemplated_rows_read_the_same(name, labels, contest):
    rows, outputs = contest
    order = list(range(200))
    random.Random(7).shuffle(order)
    pairs = [_retemplated(rows[i]["problem"], outputs[name][i]) for i in order]
    verdicts, wrong, _ = _verdicts([p for p, _ in pairs], [rows[i]["solution"] for i in order], [o for _, o in pairs])
    original, _, _ = _verdicts([r["problem"] for r in rows], [r["solution"] for r in rows], outputs[name])
    assert verdicts == [original[i] for i in order]
    assert len(_agreement(name, verdicts, wrong, labels, order)) <= (1 - AGREEMENT) * 200
