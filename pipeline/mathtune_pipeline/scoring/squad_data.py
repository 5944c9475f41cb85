"""SQuAD-format evaluation sets, and the prompt the contests asked them with.

`squad-json` is SQuAD's own file (dev-v1.1.json: data -> paragraphs -> qas);
like the contest's eval set it keeps the first question of each paragraph
(2,067 of dev-v1.1). `squad-jsonl` is one example per line:
`{"context", "question", "answers": [...] or "answer": "..."}`.
"""
import json
from pathlib import Path
from typing import Dict, List, Union

from ..errors import SpecError

PROMPT = ("Read the passage and answer the question below.\n\n### Instruction:\n{context}\n\n"
          "### Input:\n{question}\n\n### Response:")
FORMATS = ("squad-json", "squad-jsonl")


def _example(context, question, answers, where: str) -> Dict:
    if isinstance(answers, str):
        answers = [answers]
    answers = [a["text"] if isinstance(a, dict) else a for a in (answers or [])]
    if not (isinstance(context, str) and isinstance(question, str) and answers
            and all(isinstance(a, str) for a in answers)):
        raise SpecError(where, "an example with a context, a question and at least one answer text")
    return {"context": context, "question": question, "answers": answers}


def load(path: Union[str, Path], fmt: str, max_samples: int = 0, field: str = "spec.evaluation.dataset") -> List[Dict]:
    """The examples of a SQuAD file; bad input is a SpecError on `field` (the spec's dataset that named it)."""
    path = Path(path)
    if fmt not in FORMATS:
        raise SpecError(f"{field}.format", f"one of {', '.join(FORMATS)} (got {fmt!r})")
    try:
        text = path.read_text(encoding="utf-8")
        if fmt == "squad-json":
            doc = json.loads(text)
            examples = [_example(p["context"], p["qas"][0]["question"], p["qas"][0]["answers"], f"{path}: {a.get('title')}")
                        for a in doc["data"] for p in a["paragraphs"] if p.get("qas")]
        else:
            examples = []
            for number, line in enumerate(text.splitlines(), 1):
                if line.strip():
                    row = json.loads(line)
                    examples.append(_example(row.get("context"), row.get("question"),
                                             row.get("answers", row.get("answer")), f"{path}:{number}"))
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise SpecError(f"{field}.uri", f"a readable {fmt} file ({path}: {exc})") from exc
    if not examples:
        raise SpecError(f"{field}.uri", f"at least one example ({path})")
    return examples[:max_samples] if max_samples else examples


def prompt(example: Dict) -> str:
    return PROMPT.format(context=example["context"], question=example["question"])
