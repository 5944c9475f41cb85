"""Training rows that are also evaluation or prediction rows: found before training.

A run scored on rows it was trained on reports memory as skill. Each training
row (the main source's and every mix source's) is compared with every
held-out row two ways:

- exact: the same text after normalisation: Unicode NFKC (full-width digits
  and punctuation become half-width), case, runs of whitespace, and numbers
  written alike (`1,234.50`, `１２３４.５` and `1234.5` are one number);
- near: the same question with the same numbers: the same numbers in the same
  order (at least one), and words that overlap by at least NEAR_OVERLAP
  (character bigrams of the text without its numbers, Jaccard): `计算 12 + 5
  等于多少？` and `请计算 12 + 5 的结果` are near; `计算 12 + 6 …` is not.

A reading-comprehension row is compared with its passage and question
together: the same question about another passage is no leak.
"""
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

NEAR_OVERLAP = 0.6
MODES = ("drop", "fail", "warn")

_NUMBER = re.compile(r"[-−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?")
_SPACE = re.compile(r"\s+")
_NOT_WORD = re.compile(r"[\W_]+")


def _number(token: str) -> str:
    """A number written one way: no thousands separators, no trailing zeros (`1,234.50` -> `1234.5`)."""
    text = token.replace("−", "-").replace(",", "")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def normalise(text: str) -> str:
    """NFKC, lower case, numbers written alike, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = _NUMBER.sub(lambda m: _number(m.group(0)), text)
    return _SPACE.sub(" ", text).strip()


def _numbers(normalised: str) -> Tuple[str, ...]:
    return tuple(m.group(0) for m in _NUMBER.finditer(normalised))


def _bigrams(normalised: str) -> Set[str]:
    words = _NOT_WORD.sub("", _NUMBER.sub(" ", normalised))
    return {words[i:i + 2] for i in range(len(words) - 1)} or {words}


@dataclass
class Heldout:
    """The held-out rows of one set, indexed for both comparisons."""
    name: str                                   # e.g. "spec.prediction.dataset"
    exact: Set[str] = field(default_factory=set)
    by_numbers: Dict[Tuple[str, ...], List[Set[str]]] = field(default_factory=dict)

    @classmethod
    def of(cls, name: str, texts: Iterable[str]) -> "Heldout":
        held = cls(name)
        for text in texts:
            norm = normalise(text)
            held.exact.add(norm)
            numbers = _numbers(norm)
            if numbers:
                held.by_numbers.setdefault(numbers, []).append(_bigrams(norm))
        return held

    def match(self, text: str) -> Optional[str]:
        """"exact", "near" or None for one training row's text."""
        norm = normalise(text)
        if norm in self.exact:
            return "exact"
        candidates = self.by_numbers.get(_numbers(norm))
        if candidates:
            mine = _bigrams(norm)
            for theirs in candidates:
                if len(mine & theirs) / max(1, len(mine | theirs)) >= NEAR_OVERLAP:
                    return "near"
        return None


@dataclass
class Finding:
    row: int          # index among the rows checked
    kind: str         # exact or near
    against: str      # the held-out set's name


def find(texts: Sequence[str], heldout: Sequence[Heldout]) -> List[Finding]:
    """Every training text found in a held-out set (the first set that has it)."""
    found = []
    for row, text in enumerate(texts):
        for held in heldout:
            kind = held.match(text)
            if kind:
                found.append(Finding(row, kind, held.name))
                break
    return found


def tally(findings: Sequence[Finding], source: str, into: Dict) -> None:
    """Add one source's findings to the counts prepare reports (`leakage` of its result)."""
    by_source, against = into.setdefault("bySource", {}), into.setdefault("against", {})
    for f in findings:
        into[f.kind] = into.get(f.kind, 0) + 1
        by_source[source] = by_source.get(source, 0) + 1
        against[f.against] = against.get(f.against, 0) + 1
