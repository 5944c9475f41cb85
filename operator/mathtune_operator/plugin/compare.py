"""Runs side by side: their scores per metric and per type, the recipe fields
that differ, and the problems whose verdict flipped. Pure."""
from typing import Any, Dict, List, Optional, Sequence, Tuple

Run = Dict[str, Any]
# Fields of a spec that say where and how a run ran, not what it learnt.
NOT_RECIPE = ("storage", "images", "scheduling", "podTemplates", "runPolicy", "export")

METRICS: Sequence[Tuple[str, str]] = (
    ("mathAccuracy", "math accuracy (careful reader)"),
    ("mathAccuracyContestRule", "math accuracy (contest rule)"),
    ("f1", "SQuAD F1"), ("em", "SQuAD EM"), ("baseF1", "base SQuAD F1"),
    ("gatePassed", "gate passed"), ("bestEpoch", "best epoch"),
)


def flatten(node: Any, prefix: str = "") -> Dict[str, Any]:
    if isinstance(node, dict):
        out: Dict[str, Any] = {}
        for key, value in node.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else key))
        return out
    return {prefix: node}


def recipe_differences(runs: Sequence[Run]) -> List[Tuple[str, List[Any]]]:
    """(spec path, each run's value) for every recipe field whose value is not the same in all runs."""
    flat = [{k: v for k, v in flatten(r.get("spec") or {}).items() if not k.startswith(NOT_RECIPE)} for r in runs]
    paths = sorted(set().union(*flat))
    return [(p, [f.get(p) for f in flat]) for p in paths if len({repr(f.get(p)) for f in flat}) > 1]


def metric_rows(runs: Sequence[Run]) -> List[Tuple[str, List[Any], bool]]:
    """(metric, each run's value, whether they differ), the per-type accuracies after the run-level ones."""
    results = [(r.get("status") or {}).get("results") or {} for r in runs]
    rows = [(label, [res.get(key) for res in results]) for key, label in METRICS]
    types = sorted(set().union(*[set(res.get("perType") or {}) for res in results]))
    rows += [(f"accuracy: {t}", [(res.get("perType") or {}).get(t) for res in results]) for t in types]
    rows += [(f"accuracy (contest rule): {t}", [(res.get("perTypeContestRule") or {}).get(t) for res in results])
             for t in types if any((res.get("perTypeContestRule") or {}).get(t) is not None for res in results)]
    return [(label, values, len({repr(v) for v in values}) > 1) for label, values in rows]


Verdict = Tuple[bool, str, str]  # (right, question when wrong, what the model said)


def verdicts(scores: Dict[str, Any], outputs: Sequence[str]) -> Optional[Dict[int, Verdict]]:
    """{row index: verdict} of one epoch's predictions, from the predict stage's files: its scores
    (whose misses name every wrong row, with the question and the generated text, when there are
    count - correct of them) and its outputs in row order (prompt and answer). None when the misses
    were cut short, so the verdicts are unknown."""
    misses = scores.get("misses") or []
    if len(misses) != scores.get("count", 0) - scores.get("correct", 0):
        return None
    wrong = {m["index"]: m for m in misses}
    return {index: (False, wrong[index].get("question", ""), wrong[index].get("generated", "")) if index in wrong
            else (True, "", output) for index, output in enumerate(outputs)}


def _answer(output: str, question: str) -> str:
    """The model's part of a prompt-and-answer output: after the question and the template's marker line."""
    after = output.rpartition(question)[2] if question and question in output else output
    head, marker, rest = after.partition("Response:")
    return (rest if marker else after).strip()


def flips(first: Dict[int, Verdict], second: Dict[int, Verdict]) -> List[Dict[str, Any]]:
    """Problems right in one run and wrong in the other, with both answers: what the change fixed
    (wrong in the first, right in the second) and what it broke."""
    out = []
    for index in sorted(set(first) & set(second)):
        a, b = first[index], second[index]
        if a[0] != b[0]:
            question = a[1] or b[1]
            out.append({"index": index, "change": "fixed" if b[0] else "broke", "question": question,
                        "first": a[2] if not a[0] else _answer(a[2], question),
                        "second": b[2] if not b[0] else _answer(b[2], question)})
    return out
