"""Math accuracy of predict outputs against a held-out set, overall and per problem type."""
import ast
from collections import defaultdict
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Union

from ..data.cot import ChainOfThought
from ..data.loaders import unwrap_prompt
from . import answers, reader

# The exact answer of a computable question: the chain-of-thought solver
# without rounding to speak of (12 decimals) and without steps.
_EXACT = ChainOfThought(decimals=12, step_types=())


def exact_answer(kind: str, question: str):
    """The question's answer computed from its numbers, or None where the type
    is not computable (English competition problems, unparsed shapes)."""
    solved = _EXACT.solve(kind, question)
    return answers.extract(solved, kind) if solved else None


def question_of(prompt: str) -> str:
    """The bare question inside an alpaca-style prompt (the prompt itself when it has no template)."""
    return unwrap_prompt(prompt) or prompt.strip()


def read_predict_output(path: Union[str, Path]) -> List[str]:
    """The texts of a MindFormers predict output file: a Python literal list of
    `{'text_generation_text': [text]}` (what the contest's predict script writes)."""
    try:
        entries = ast.literal_eval(Path(path).read_text(encoding="utf-8"))
    except (SyntaxError, ValueError) as exc:
        raise ValueError(f"{path}: not a Python literal list of predict outputs ({exc})") from exc
    texts = []
    for i, entry in enumerate(entries):
        try:
            generated = entry["text_generation_text"]
        except (TypeError, KeyError):
            raise ValueError(f"{path}: entry {i} has no 'text_generation_text'") from None
        texts.append(generated[0] if isinstance(generated, (list, tuple)) else str(generated))
    return texts


def score(problems: Sequence[str], solutions: Sequence[str], outputs: Sequence[str],
          classify: Callable[[str], str], tolerance: float = 0.01,
          keep_misses: int = 20) -> Dict:
    """Score predict `outputs` (echo included) for `problems` against reference `solutions`.

    The answer of each output is the one the careful reader finds (reader.py);
    the contest's rule (the last number of the output) is scored beside it,
    for comparison with the seeds' reported figures.

    Returns {"accuracy", "count", "correct", "perType": {type: {"accuracy", "correct", "count"}},
    "misses": [first `keep_misses` wrong ones, for reading by hand], "rule", "contestRule"
    (the same figures under the last-number rule), and "truth"}: the first figures are against
    the dataset's reference (the contest's: comparable with the seeds), "truth" the same over
    the computable questions against their exact answer (the contest's references come from
    float arithmetic: 42684380.0 for 42684379.84).
    """
    if not (len(problems) == len(solutions) == len(outputs)):
        raise ValueError(f"{len(problems)} problems, {len(solutions)} solutions, {len(outputs)} outputs")
    if not problems:
        raise ValueError("nothing to score")
    per_type: Dict[str, List[int]] = defaultdict(lambda: [0, 0])
    contest_per_type: Dict[str, List[int]] = defaultdict(lambda: [0, 0])
    truth_per_type: Dict[str, List[int]] = defaultdict(lambda: [0, 0])
    misses: List[Dict[str, object]] = []
    for index, (prompt, solution, output) in enumerate(zip(problems, solutions, outputs)):
        question = question_of(prompt)
        kind = classify(question)
        generated = answers.strip_echo(output, prompt=prompt, question=question)
        reading = reader.read(generated, question, kind)
        want = answers.extract(solution, kind)
        ok = answers.is_correct(reading.value, want, tolerance)
        _count(per_type, kind, ok)
        _count(contest_per_type, kind, answers.is_correct(answers.extract(generated, kind), want, tolerance))
        exact = exact_answer(kind, question)
        if exact is not None:
            _count(truth_per_type, kind, answers.is_true(reading.value, exact))
        if not ok and len(misses) < keep_misses:
            misses.append({"index": index, "type": kind, "question": question,
                           "generated": generated.strip()[:200], "extracted": _show(reading.value),
                           "readBy": reading.rule, "reference": _show(want)})
    rule = answers.REFERENCE_RULE.replace("tolerance", str(tolerance))
    return {**_totals(per_type), "misses": misses,
            "rule": f"the answer the output commits to (reader.py); {rule}",
            "contestRule": {**_totals(contest_per_type), "rule": f"the last number of the output; {rule}"},
            "truth": _truth(truth_per_type)}


def _count(counts: Dict[str, List[int]], kind: str, ok: bool) -> None:
    counts[kind][0] += ok
    counts[kind][1] += 1


def _totals(counts: Dict[str, List[int]]) -> Dict:
    correct, count = sum(c for c, _ in counts.values()), sum(n for _, n in counts.values())
    return {"accuracy": correct / count if count else None, "correct": correct, "count": count,
            "perType": _per_type(counts)}


def _per_type(counts: Dict[str, List[int]]) -> Dict[str, Dict]:
    return {k: {"accuracy": c / n, "correct": c, "count": n} for k, (c, n) in sorted(counts.items())}


def _truth(counts: Dict[str, List[int]]) -> Dict:
    return {**_totals(counts), "rule": answers.TRUTH_RULE}


def _show(value) -> Optional[str]:
    if value is None:
        return None
    written = getattr(value, "written", None)
    return f"{written[0]}/{written[1]}" if written else repr(value)
