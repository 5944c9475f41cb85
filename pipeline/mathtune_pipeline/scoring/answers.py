"""Math answers out of generated text, and whether they are right.

What the public contest entries did, made explicit: remove the prompt the model
echoes, take the last number of the rest, compare it with the last number of
the reference solution within an absolute tolerance (1e-2 by default).
Numbers may carry a sign (also the Unicode minus), thousands separators
(`1,234,567.8`) and E notation (`5.63e+67`). For "simplify the fraction"
problems the answer is a fraction and must match the reference's reduced
fraction exactly (a right value in unreduced form is a wrong answer).
"""
import re
from fractions import Fraction
from typing import Optional, Union

from ..data.types import SIMPLIFY  # the data side names the problem types

# A number: optional sign, digits with optional thousands groups, optional
# decimals, optional exponent. The thousands form needs every group to be
# exactly three digits with no space after the comma, so lists such as
# "[29, 21, 47]" stay three numbers.
# Word characters are ASCII only: a number right next to a CJK character
# ("为1260平方厘米") is still a number.
_NUMBER = re.compile(
    r"(?<![A-Za-z0-9_.])[-−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?(?![A-Za-z0-9_])"
    r"|(?<![A-Za-z0-9_.])[-−]?\.\d+(?:[eE][-+]?\d+)?"
)
_FRACTION = re.compile(r"(?<![A-Za-z0-9_.])([-−]?\d+)\s*/\s*([-−]?\d+)(?![\d.])")
_RESPONSE_MARK = "### Response:"



def _to_float(token: str) -> float:
    return float(token.replace("−", "-").replace(",", ""))


def numbers(text: str):
    """Every number in `text`, in order, as floats."""
    return [_to_float(m.group(0)) for m in _NUMBER.finditer(text)]


def last_number(text: str) -> Optional[float]:
    found = numbers(text)
    return found[-1] if found else None


def last_fraction(text: str) -> Optional[Fraction]:
    """The last `p/q` in `text` as written (not reduced), or a bare last integer as p/1."""
    found = list(_FRACTION.finditer(text))
    if found:
        p, q = (int(g.replace("−", "-")) for g in found[-1].groups())
        if q == 0:
            return None
        # Kept unreduced on purpose: Fraction would reduce 6/8 to 3/4.
        return _Written(p, q)
    value = last_number(text)
    if value is not None and float(value).is_integer():
        return _Written(int(value), 1)
    return None


class _Written(Fraction):
    """A fraction that remembers whether it was written in lowest terms."""

    def __new__(cls, p: int, q: int):
        self = super().__new__(cls, p, q)
        if q < 0:
            p, q = -p, -q
        self.written = (p, q)
        return self

    @property
    def reduced(self) -> bool:
        return self.written == (self.numerator, self.denominator)


def strip_echo(text: str, prompt: str = "", question: str = "") -> str:
    """The generated part of a predict output that repeats its input first.

    MindFormers' predict returns the input followed by the generation. Seen in
    the real outputs: the whole prompt (template included) or only the
    question. Whatever was echoed is cut, so numbers of the question never
    count as the answer.
    """
    text = str(text)
    for echoed in (prompt, question):
        if echoed and text.startswith(echoed):
            return text[len(echoed):]
    if _RESPONSE_MARK in text:
        return text.rsplit(_RESPONSE_MARK, 1)[1]
    if question and question in text:
        return text.split(question, 1)[1]
    return text


def extract(text: str, problem_type: str = "") -> Union[float, Fraction, None]:
    """The answer in already de-echoed `text`: a fraction for simplify, else the last number."""
    if problem_type == SIMPLIFY:
        return last_fraction(text)
    return last_number(text)


# Against the truth: the exact answer computed from the question. The answers
# the project trains on are that truth rounded half-up to 2 decimals (15
# significant digits from 1e16 up, data/cot.py), so a right answer is within
# 0.01, or within 1e-12 of the truth's size where 0.01 is below what the
# written digits can hold.
TRUTH_RULE = "|answer - exact| <= max(0.01, 1e-12 x |exact|); simplify: the same reduced fraction"
REFERENCE_RULE = "|answer - reference| <= tolerance (absolute); simplify: the same reduced fraction"


def is_true(predicted, truth) -> bool:
    """Right against the exact answer (TRUTH_RULE)."""
    if isinstance(truth, Fraction) or predicted is None or truth is None:
        return is_correct(predicted, truth)
    return abs(float(predicted) - float(truth)) <= max(0.01, 1e-12 * abs(float(truth)))


def is_correct(predicted, reference, tolerance: float = 0.01) -> bool:
    """Right when within `tolerance` (absolute); simplify answers must be the same reduced fraction."""
    if predicted is None or reference is None:
        return False
    if isinstance(reference, Fraction):
        if not isinstance(predicted, Fraction):
            return False
        reduced = getattr(predicted, "reduced", True)
        return reduced and predicted == reference
    return abs(float(predicted) - float(reference)) <= tolerance
