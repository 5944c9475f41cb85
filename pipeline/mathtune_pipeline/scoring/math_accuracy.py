"""Math accuracy of predict outputs against a held-out set, overall and per problem type."""
import ast
from collections import defaultdict
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Union

from ..data.loaders import unwrap_prompt
from . import answers


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

    Returns {"accuracy", "count", "correct", "perType": {type: {"accuracy", "correct", "count"}},
    "misses": [first `keep_misses` wrong ones, for reading by hand]}.
    """
    if not (len(problems) == len(solutions) == len(outputs)):
        raise ValueError(f"{len(problems)} problems, {len(solutions)} solutions, {len(outputs)} outputs")
    if not problems:
        raise ValueError("nothing to score")
    per_type: Dict[str, List[int]] = defaultdict(lambda: [0, 0])
    misses = []
    correct = 0
    for index, (prompt, solution, output) in enumerate(zip(problems, solutions, outputs)):
        question = question_of(prompt)
        kind = classify(question)
        generated = answers.strip_echo(output, prompt=prompt, question=question)
        got = answers.extract(generated, kind)
        want = answers.extract(solution, kind)
        ok = answers.is_correct(got, want, tolerance)
        per_type[kind][0] += ok
        per_type[kind][1] += 1
        correct += ok
        if not ok and len(misses) < keep_misses:
            misses.append({"index": index, "type": kind, "question": question,
                           "generated": generated.strip()[:200], "extracted": _show(got),
                           "reference": _show(want)})
    return {
        "accuracy": correct / len(problems),
        "correct": correct,
        "count": len(problems),
        "perType": {k: {"accuracy": c / n, "correct": c, "count": n} for k, (c, n) in sorted(per_type.items())},
        "misses": misses,
    }


def _show(value) -> Optional[str]:
    if value is None:
        return None
    written = getattr(value, "written", None)
    return f"{written[0]}/{written[1]}" if written else repr(value)
