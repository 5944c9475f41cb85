"""The answer a generated text commits to, read the way a careful grader reads it.

A model asked one question often answers it and then keeps generating until
`maxNewTokens` runs out: a question of its own, the question again, a
numbered list, a quiz. The contest's rule (the last number of the whole
output, `answers.last_number`) takes that ramble's last number as the answer,
so right answers count as wrong. This reader instead:

1. cuts the output where the model starts something that is not its answer
   (CUT_RULES, earliest match wins);
2. within what is left, takes the answer the model marks ("…为 v", "答案 v",
   "the answer is v", "x = v" for an equation), else the value a statement
   `expression = value` arrives at, else the first number standing alone;
3. for a one-operation question (add, subtract, multiply, divide, power,
   sqrt) the first such answer counts (what follows is a check or a ramble);
   for a worked problem the last (its steps lead up to it).

Every rule is named; `read()` says which one decided, so a disagreement with
a human grader points at a rule. Real examples of each rule (from the
contest's predict outputs) are in docs/answer-reader.md and in
tests/unit/pipeline/scoring/test_reader.py.
"""
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import List, Optional, Tuple, Union

from ..data import types as T
from . import answers

Value = Union[float, Fraction, None]

# A number as written: sign, digits (thousands groups allowed), decimals, exponent.
_NUM = r"[-−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?"
_NUMBER = re.compile(rf"(?<![\w.]){_NUM}(?![\w])")
# A fraction "p/q", a number, or "a * 10^n", as the whole of an answer. The
# number is read whole (atomic): `184996.5.3` is no number, not 18499; and a
# letter right after it makes it a coefficient (`2x`), not a value.
_VALUE = re.compile(rf"\s*(?P<p>(?>{_NUM}))(?:\s*/\s*(?P<q>[-−]?\d+)"
                    rf"|\s*[*×]\s*10\s*\^\s*(?P<e>[-−]?\d+))?(?![\d]|\.\d|[A-Za-z])")
# What may follow an answer's value without making it an expression: units,
# punctuation, the end. An operator followed by a number (or by nothing: the
# output was cut there, `7059.64 + `) makes it an expression; a new line does not.
_CONTINUES = re.compile(r"[ \t]*(?:[-+*/×÷^]|\*\*)[ \t]*(?:[-−(]?\d|$)")

# Types whose question is one operation: its first stated result is the answer.
ONE_OPERATION = {T.ADD, T.SUBTRACT, T.MULTIPLY, T.DIVIDE, T.POWER, T.SQRT}

# -- where the answer ends (the earliest of these cuts the text) -------------
CUT_RULES: List[Tuple[str, str]] = [
    # A prompt of the alpaca form, or a new instruction: `### Instruction`.
    ("new-instruction", r"###|Below is an instruction|Instruction:|Question:|问题\s*\d*\s*[:：]"),
    # Code: a fence or a comment line (`# 2.使用列表推导式…`).
    ("code", r"```|^\s*#|\"\"\""),
    # A new question: the contest's question openings, or a question mark.
    ("new-question", r"请计算|请用|请使用|请编写|计算\s*-?\d|解方程|一个[\u4e00-\u9fff]|等于多少|是多少|[？?]"),
    # A numbered item after the first: `… = 2726.66 2.`, `1. 1.265 2. 1.265`.
    ("numbered-item", r"(?:^|(?<=\s))(?:[2-9]|[1-9]\d)\.(?=\s|$)|\([2-9]\)"),
    # A quiz of its own: `A. 9 克 B. 9 克 C. 9 克`.
    ("multiple-choice", r"(?:^|(?<=\s))A[.．、]\s*\S[^\n]*?\sB[.．、]"),
]
# One pass finds the earliest: at the same place the rule listed first wins.
_CUT = re.compile("|".join(f"(?P<{name.replace('-', '_')}>{pattern})" for name, pattern in CUT_RULES), re.M)


@dataclass(frozen=True)
class Reading:
    value: Value
    rule: str          # which rule decided (or why there is no answer)
    text: str          # the part of the output the answer was read from


# A value just stated (`= 5632.48 `, `是 161.99 `), where a re-echo of the question would start.
_STATED_VALUE = re.compile(r"(?:=|是|为|等于)\s*" + _NUM + r"\s+")


def _question_start(question: str) -> str:
    """The question from its first number on (`8230.71 - 2598.23 等于多少？`): what a re-echo repeats."""
    match = re.search(r"[-−]?\d", question)
    return question[match.start():] if match else question


def cut(generated: str, question: str = "") -> Tuple[str, str]:
    """(what is left, the rule that cut it: "" when nothing did)."""
    found = _CUT.search(generated)
    end, rule = (found.start(), str(found.lastgroup).replace("_", "-")) if found else (len(generated), "")
    # The question again after a statement of it (`= 5632.48 8230`, `是 161.99 126.99 的`):
    # a repeat starts right after an answer's value, with the question's first characters.
    start = _question_start(question)
    if len(start) >= 3:
        for match in _STATED_VALUE.finditer(generated, 0, end):
            tail = generated[match.end():end]
            probe = tail[:len(start)]
            if len(probe) >= 2 and start.startswith(probe):
                end, rule = match.end(), "repeated-question"
                break
    # The same line again and again (`x = -30` four times): the first copy is the answer.
    lines = generated[:end].split("\n")
    for i in range(1, len(lines)):
        if lines[i].strip() and lines[i].strip() == lines[i - 1].strip():
            end, rule = len("\n".join(lines[:i])), "repetition"
            break
    return generated[:end], rule


def _value(token_p: str, token_q: Optional[str], kind: str, exponent: Optional[str] = None) -> Value:
    p = token_p.replace("−", "-").replace(",", "")
    if exponent is not None:
        return float(p) * 10.0 ** int(exponent.replace("−", "-"))
    if token_q is not None:
        q = int(token_q.replace("−", "-"))
        if q == 0:
            return None
        if kind == T.SIMPLIFY and "." not in p and "e" not in p.lower():
            return answers._Written(int(p), q)
        return float(p) / q
    if kind == T.SIMPLIFY:
        number = float(p)
        return answers._Written(int(number), 1) if number.is_integer() else None
    return float(p)


def _final_value(text: str, kind: str) -> Optional[Value]:
    """The value `text` (what follows an `=` or a marker) states, when it is a value and not an
    expression: `-5741.59`, `79/33`, `336 平方厘米`; None for `7059.64 + ` or `1075.16 - 809`."""
    match = _VALUE.match(text)
    if not match:
        return None
    rest = text[match.end():]
    # An operator and a number after it, or an `=` later in the clause (`5 的 5 次方 = 5 ×`):
    # the start of an expression.
    if _CONTINUES.match(rest) or "=" in re.split(r"[。，,;；\n]", rest, maxsplit=1)[0]:
        return None
    return _value(match.group("p"), match.group("q"), kind, match.group("e"))


# A marked answer: the marker, then (an `=` chain or) the value, on the same
# line: a marker that ends its line (`答案：` above a worked solution) is a
# heading, and the solution's last statement is the answer.
_MARKS = re.compile(r"(?:答案|结果|解|值|是|为|等于|the answer is|answer:)[ \t]*[:：]?[ \t]*(?==?[ \t]*[-−(\d])",
                    re.I)
_UNKNOWN = re.compile(r"(?<![\w^])x\s*=(?!=)")


def _chain_end(text: str, start: int, kind: str) -> Value:
    """From `start` (just after `=` or a marker), the value the `=` chain on that line arrives
    at: its last link, when that is a value (`a - -b = a + b = c` gives c)."""
    segment = text[start:].split("\n", 1)[0]
    return _final_value(re.split(r"(?<![<>!=])=(?!=)", segment)[-1], kind)


def _statements(text: str, kind: str):
    """(position, rule, value) of every answer stated in `text`, in order."""
    found = []
    for match in _MARKS.finditer(text):
        after = match.end() + len(text[match.end():]) - len(text[match.end():].lstrip(" \t"))
        if text[after:after + 1] == "=":   # `面积为 = 48 * 7 = 336`
            after += 1
        value = _chain_end(text, after, kind)
        if value is not None:
            found.append((match.start(), "marked", value))
    if kind == T.EQUATION:
        for match in _UNKNOWN.finditer(text):
            value = _chain_end(text, match.end(), kind)
            if value is not None:
                found.append((match.start(), "unknown", value))
    for line_start, line in _lines(text):
        if "=" not in line:
            continue
        first = line.index("=")
        if re.search(r"[A-Za-z]", line[:first]):
            continue   # an equation (`97x + 92 = 0`, `当 x = 0.64 时`), not a result: marks and `x =` read those
        value = _chain_end(text, line_start + first + 1, kind)
        if value is None:
            # The value first, then what it is (`-9390.8 = -9299.25 * 1012.66`).
            lead = line[:first].strip()
            value = _final_value(lead, kind) if _VALUE.fullmatch(lead) else None
        if value is not None:
            found.append((line_start, "statement", value))
    return sorted(found, key=lambda f: f[0])


def _lines(text: str):
    start = 0
    for line in text.split("\n"):
        yield start, line
        start += len(line) + 1


_LIST_MARKER = re.compile(r"(?:^|(?<=\s))(?:\d+\.|\(\d+\)|[-•])(?=\s)")


def _lone_number(text: str, question: str, kind: str) -> Tuple[int, Value]:
    """(position, value) of the first number standing alone (a list marker `1.`/`(1)`/`-`
    before it is not a number), unless it starts an expression or is one of the question's
    own numbers; (-1, None) when there is none."""
    body = _LIST_MARKER.sub(lambda m: " " * len(m.group(0)), text)
    match = _NUMBER.search(body)
    if match is None:
        return -1, None
    value = _final_value(body[match.start():], kind)
    if value is None or (isinstance(value, float) and
                         value in {answers._to_float(m.group(0)) for m in _NUMBER.finditer(question)}):
        return -1, None
    return match.start(), value


def read(generated: str, question: str = "", kind: str = "") -> Reading:
    """The answer `generated` (the echo already removed) commits to."""
    kept, cut_rule = cut(generated, question)
    then = f", then {cut_rule}" if cut_rule else ""
    stated = _statements(kept, kind)
    if stated:
        marked = [s for s in stated if s[1] in ("marked", "unknown")]
        pool = marked or stated
        if kind not in ONE_OPERATION:
            return Reading(pool[-1][2], pool[-1][1] + then, kept)
        position, rule, value = pool[0]
        # A one-operation answer stated alone before any statement (` -4705.89` then a check).
        lone_at, lone = _lone_number(kept[:position], question, kind)
        if lone is not None:
            return Reading(lone, "lone-number" + then, kept)
        return Reading(value, rule + then, kept)
    lone_at, lone = _lone_number(kept, question, kind)
    if lone is not None:
        return Reading(lone, "lone-number" + then, kept)
    return Reading(None, f"no answer before {cut_rule}" if cut_rule else "no answer", kept)
