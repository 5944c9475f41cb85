"""Classify a question into the 15 contest types (seed 000's rules), or `other`.

The built-in rules are seed 000's prefix/suffix tests (REFERENCE §2), ordered
so the common types are decided in one or two string tests: at 550k rows per
run the classifier is a hot loop. Rules from the spec
(`spec.data.classify.extraRules`) are tried first, so a user can split a type
or name a new one without touching code.
"""
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

from ..errors import SpecError
from . import types as T

_OPERATORS = {"+": T.ADD, "-": T.SUBTRACT, "*": T.MULTIPLY, "/": T.DIVIDE}


def classify_builtin(q: str) -> str:
    """Seed 000's rules on one bare question (no prompt template around it)."""
    if not q or not "\u4e00" <= q[0] <= "\u9fff":
        return T.ENGLISH
    if q.startswith("计算"):
        # The contest's own spacing first, one split for all six shapes:
        # `计算 A op B 等于多少？` (A and B may be negative: `- -1709.92`, so the
        # operator is the middle word, not the first '-'), `计算 A 的 n 次方？`,
        # `计算 A 的平方根？`.
        parts = q.split(" ")
        if len(parts) == 5:
            if parts[4] == "等于多少？" and parts[2] in _OPERATORS:
                return _OPERATORS[parts[2]]
            if parts[2] == "的" and parts[4] == "次方？":
                return T.POWER
        elif len(parts) == 3 and parts[2] == "的平方根？":
            return T.SQRT
        if q.endswith("的平方根？"):
            return T.SQRT
        if q.endswith("次方？"):
            return T.POWER
        # Seed 000 strips the spaces first: `计算A+B等于多少？`.
        return _operator_without_spaces(q)
    if q.startswith("解方程"):
        return T.EQUATION
    if q.startswith("求以下数据的平均值"):
        return T.MEAN
    if q.startswith("当") and "时，求函数" in q:
        return T.FUNCTION
    if q.startswith("商品"):
        return T.DISCOUNT
    if q.endswith("请计算其面积。"):
        return T.AREA
    if q.endswith("请计算今年的销售额。"):
        return T.SALES
    if q.endswith("请计算该物体的质量。"):
        return T.MASS
    if q.endswith("进行简化。"):
        return T.SIMPLIFY
    return T.OTHER


_NO_SPACE_OP = re.compile(r"^计算(-?\d+(?:\.\d+)?)([-+*/])(-?\d+(?:\.\d+)?)等于多少？$")


def _operator_without_spaces(q: str) -> str:
    m = _NO_SPACE_OP.match(q.replace(" ", ""))
    return _OPERATORS[m.group(2)] if m else T.OTHER


@dataclass(frozen=True)
class Rule:
    """A spec rule: every condition given must hold."""
    type: str
    prefix: str = ""
    suffix: str = ""
    contains: str = ""
    regex: Optional["re.Pattern[str]"] = None

    def matches(self, q: str) -> bool:
        return (q.startswith(self.prefix) and q.endswith(self.suffix) and self.contains in q
                and (self.regex is None or self.regex.search(q) is not None))


def parse_rules(raw: Any, field: str = "spec.data.classify.extraRules") -> List[Rule]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise SpecError(field, "a list of rules {type, prefix, suffix, contains, regex}")
    rules = []
    for i, item in enumerate(raw):
        where = f"{field}[{i}]"
        if not isinstance(item, dict):
            raise SpecError(where, "a mapping {type, prefix, suffix, contains, regex}")
        unknown = set(item) - {"type", "prefix", "suffix", "contains", "regex"}
        if unknown:
            raise SpecError(f"{where}.{sorted(unknown)[0]}", "one of type, prefix, suffix, contains, regex")
        kind = item.get("type")
        if not isinstance(kind, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", kind or ""):
            raise SpecError(f"{where}.type", "a type name: lower-case letters, digits, underscores")
        conds = {k: item.get(k) or "" for k in ("prefix", "suffix", "contains", "regex")}
        for k, v in conds.items():
            if not isinstance(v, str):
                raise SpecError(f"{where}.{k}", "a string")
        if not any(conds.values()):
            raise SpecError(where, "at least one of prefix, suffix, contains, regex")
        try:
            pattern = re.compile(conds["regex"]) if conds["regex"] else None
        except re.error as exc:
            raise SpecError(f"{where}.regex", f"a valid regular expression ({exc})") from exc
        rules.append(Rule(kind, conds["prefix"], conds["suffix"], conds["contains"], pattern))
    return rules


class Classifier:
    """Spec rules first, then a fallback: seed 000's rules, or one fixed type
    (`choice` for MMLU/CMMLU rows, where the contest's rules mean nothing)."""

    def __init__(self, rules: Sequence[Rule] = (), fallback_type: Optional[str] = None):
        self.rules = tuple(rules)
        self.fallback: Callable[[str], str] = (classify_builtin if fallback_type is None
                                               else (lambda _q: fallback_type))

    def __call__(self, question: str) -> str:
        for rule in self.rules:
            if rule.matches(question):
                return rule.type
        return self.fallback(question)

    def classify_all(self, questions: Sequence[str]) -> List[str]:
        return list(map(self if self.rules else self.fallback, questions))


def count_types(kinds: Sequence[str]) -> Dict[str, int]:
    return dict(sorted(Counter(kinds).items()))
