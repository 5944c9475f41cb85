"""Multiple-choice answers (the MMLU/CMMLU form of seed 002): which letter did the model pick.

The model's text after the echoed prompt is read for an explicit statement
first ("答案是 B", "answer: (C)"), then for the first standalone option letter.
"""
import re
from typing import Optional, Sequence

LETTERS = "ABCD"
_STATED = re.compile(r"(?:答案|answer|选项|option)\s*(?:是|为|is|:|：)?\s*[(（]?\s*([A-D])(?![A-Za-z])", re.IGNORECASE)
_STANDALONE = re.compile(r"(?<![A-Za-z])[(（]?([A-D])(?:[)）.．、:：\s]|$)")


def extract_choice(text: str, letters: str = LETTERS) -> Optional[str]:
    """The option letter the text picks, or None when it names none."""
    text = str(text).strip()
    stated = _STATED.search(text)
    if stated and stated.group(1).upper() in letters:
        return stated.group(1).upper()
    for match in _STANDALONE.finditer(text):
        if match.group(1) in letters:
            return match.group(1)
    return None


def accuracy(picked: Sequence[Optional[str]], answers: Sequence[str]) -> float:
    if len(picked) != len(answers):
        raise ValueError(f"{len(picked)} choices for {len(answers)} answers")
    if not answers:
        raise ValueError("nothing to score")
    return sum(p is not None and p == a.strip().upper() for p, a in zip(picked, answers)) / len(answers)
