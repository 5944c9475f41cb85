"""Chain of thought per problem type, computed from the question with exact decimals.

The contest's own answers come from float arithmetic (`42684379.88` printed as
`42684380.0`, `6481139966494.99` vs `...98`), so every answer here is
recomputed from the numbers in the question: sums, differences and products
exactly with `decimal`, quotients and roots at 60 significant digits, then
rounded half-up to `decimals` places (seed 000: 2). Intermediate steps are
exact; only the last value of a chain is rounded. Trailing zeros are dropped
(`336`, `-7015.4`): fewer tokens, same number.

Seed 000 spells out the steps for some types and keeps the bare shape for the
rest (multiply, divide, sqrt, power, English), but rounds both; `types`
chooses which get steps. English and unknown types are left as they are: there
is nothing to compute.
"""
import math
import re
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from fractions import Fraction
from typing import Callable, Dict, FrozenSet, Iterable, Optional

from . import types as T

# Seed 000: these get their reasoning spelled out; the others keep the bare shape.
SEED000_STEP_TYPES: FrozenSet[str] = frozenset({
    T.ADD, T.SUBTRACT, T.EQUATION, T.DISCOUNT, T.MEAN, T.MASS, T.AREA, T.SALES, T.SIMPLIFY, T.FUNCTION})
COMPUTABLE_TYPES: FrozenSet[str] = frozenset(T.CONTEST_TYPES) - {T.ENGLISH}

# Explicit contexts, never the thread's: a caller's decimal settings cannot leak
# in, and no context is switched per row (that cost ~15% at 100k rows).
_CTX = Context(prec=60, rounding=ROUND_HALF_UP, Emax=10 ** 6, Emin=-10 ** 6)
# Powers: exact (a few digits to the power <= 400 stays far below 4000 digits).
_EXACT = Context(prec=4000, rounding=ROUND_HALF_UP, Emax=10 ** 6, Emin=-10 ** 6)
_NUM = r"(-?\d+(?:\.\d+)?)"
_NUMBER = re.compile(_NUM)
_ARITH = re.compile(r"^计算\s*" + _NUM + r"\s*([-+*/])\s*" + _NUM + r"\s*等于多少？?$")
_SQRT = re.compile(r"^计算\s*" + _NUM + r"\s*的平方根？?$")
_POWER = re.compile(r"^计算\s*" + _NUM + r"\s*的\s*(\d+)\s*次方？?$")
_EQUATION = re.compile(r"^解方程\s*" + _NUM + r"\s*x\s*([-+])\s*" + _NUM + r"\s*=\s*0$")
_MEAN = re.compile(r"^求以下数据的平均值：?\s*\[([^\]]*)\]$")
_FUNCTION = re.compile(r"^当\s*x\s*=\s*" + _NUM + r"\s*时，求函数\s*y\s*=\s*" + _NUM + r"\s*x\s*\^\s*(\d+)\s*的值$")
_AREA = re.compile(r"长为\s*" + _NUM + r"\s*厘米，宽为\s*" + _NUM + r"\s*厘米")
_MASS = re.compile(r"密度为\s*" + _NUM + r"\s*克/立方厘米，体积为\s*" + _NUM + r"\s*立方厘米")
_DISCOUNT = re.compile(r"原价为\s*" + _NUM + r"\s*元，打折后的价格为\s*" + _NUM + r"\s*元")
_SALES = re.compile(r"去年销售额为\s*" + _NUM + r"\s*万元，今年销售额增加了\s*" + _NUM + r"\s*%")
_SIMPLIFY = re.compile(r"^将分数\s*(-?\d+)\s*/\s*(-?\d+)\s*进行简化")

# Beyond this magnitude a fixed-point answer is mostly digits nobody reads (the
# function type reaches 1e67): use 15 significant digits in E notation instead.
_SCIENTIFIC_ABOVE = Decimal(10) ** 16
_SIGNIFICANT = 15
_SCI = Context(prec=_SIGNIFICANT, rounding=ROUND_HALF_UP, Emax=10 ** 6, Emin=-10 ** 6)
_QUANTUM = [Decimal(1).scaleb(-d) for d in range(13)]


def fmt(value: Decimal, decimals: int) -> str:
    """`value` rounded half-up to `decimals` places, trailing zeros dropped."""
    if abs(value) >= _SCIENTIFIC_ABOVE:
        rounded = _SCI.plus(value)
        return f"{rounded.normalize(_SCI):E}"
    q = value.quantize(_QUANTUM[decimals] if decimals < len(_QUANTUM) else Decimal(1).scaleb(-decimals),
                       rounding=ROUND_HALF_UP, context=_CTX)
    if q == 0:
        return "0"
    return format(q.normalize(_CTX), "f")


def exact(value: Decimal) -> str:
    """An exact intermediate value, without exponent or trailing zeros."""
    if value == 0:
        return "0"
    return format(value.normalize(_CTX), "f")


def _neg(text: str) -> bool:
    return text.startswith("-")


def _abs(text: str) -> str:
    return text[1:] if _neg(text) else text


def _paren(text: str) -> str:
    return f"({text})" if _neg(text) else text


class ChainOfThought:
    """`solve(kind, question, solution) -> new solution or None` (None: keep the original)."""

    def __init__(self, decimals: int = 2, step_types: Optional[Iterable[str]] = None):
        self.decimals = decimals
        self.step_types = SEED000_STEP_TYPES if step_types is None else frozenset(step_types)
        self._solvers: Dict[str, Callable[[str, bool], Optional[str]]] = {
            T.ADD: self._arith, T.SUBTRACT: self._arith, T.MULTIPLY: self._arith, T.DIVIDE: self._arith,
            T.SQRT: self._sqrt, T.POWER: self._power, T.EQUATION: self._equation, T.DISCOUNT: self._discount,
            T.MEAN: self._mean, T.MASS: self._mass, T.AREA: self._area, T.SALES: self._sales,
            T.SIMPLIFY: self._simplify, T.FUNCTION: self._function,
        }

    def solve(self, kind: str, question: str) -> Optional[str]:
        solver = self._solvers.get(kind)
        if solver is None:
            return None
        try:
            return solver(question.strip(), kind in self.step_types)
        except (InvalidOperation, ZeroDivisionError, ValueError, OverflowError):
            return None

    def _r(self, value: Decimal) -> str:
        return fmt(value, self.decimals)

    # -- the four operations -------------------------------------------------
    def _arith(self, q: str, steps: bool) -> Optional[str]:
        m = _ARITH.match(q)
        if not m:
            return None
        a, op, b = m.groups()
        x, y = Decimal(a), Decimal(b)
        if op == "/" and not y:
            return None
        value = {"+": _CTX.add, "-": _CTX.subtract, "*": _CTX.multiply, "/": _CTX.divide}[op](x, y)
        head = f"{a} {op} {b}"
        if steps:
            # Sign normalisation (seed 000): a - -b = a + b, a + -b = a - b, -a * -b = a * b.
            if op in "+-" and _neg(b):
                return f"{head} = {a} {'-' if op == '+' else '+'} {_abs(b)} = {self._r(value)}"
            if op in "*/" and _neg(a) and _neg(b):
                return f"{head} = {_abs(a)} {op} {_abs(b)} = {self._r(value)}"
        return f"{head} = {self._r(value)}"

    def _sqrt(self, q: str, steps: bool) -> Optional[str]:
        m = _SQRT.match(q)
        if not m or _neg(m.group(1)):
            return None
        return f"√{m.group(1)} = {self._r(Decimal(m.group(1)).sqrt(_CTX))}"

    def _power(self, q: str, steps: bool) -> Optional[str]:
        m = _POWER.match(q)
        if not m:
            return None
        a, n = m.group(1), int(m.group(2))
        if n > 64:
            return None
        value = _EXACT.power(Decimal(a), n)
        head = f"{_paren(a)}^{n}"
        if steps and 2 <= n <= 4:
            return f"{head} = {' * '.join([_paren(a)] * n)} = {self._r(value)}"
        return f"{head} = {self._r(value)}"

    # -- word problems -------------------------------------------------------
    def _equation(self, q: str, steps: bool) -> Optional[str]:
        m = _EQUATION.match(q)
        if not m:
            return None
        k, sign, b = m.groups()
        kk = Decimal(k)
        bb = Decimal(b) if sign == "+" else -Decimal(b)
        if kk == 0:
            return None
        rhs = exact(-bb)
        x = self._r(_CTX.divide(-bb, kk))
        if not steps:
            return f"方程的解为：{x}"
        return f"{k}x = {rhs}\nx = {rhs} / {_paren(k)}\nx = {x}\n方程的解为：{x}"

    def _discount(self, q: str, steps: bool) -> Optional[str]:
        m = _DISCOUNT.search(q)
        if not m:
            return None
        a, b = m.groups()
        aa, bb = Decimal(a), Decimal(b)
        if aa == 0:
            return None
        value = self._r(_CTX.divide(_CTX.multiply(_CTX.subtract(aa, bb), 100), aa))
        if not steps:
            return value
        return f"({a} - {_paren(b)}) / {a} * 100 = {exact(aa - bb)} / {a} * 100 = {value}"

    def _mean(self, q: str, steps: bool) -> Optional[str]:
        m = _MEAN.match(q)
        if not m:
            return None
        items = [x.strip() for x in m.group(1).split(",") if x.strip()]
        if not items or not all(map(_NUMBER.fullmatch, items)):
            return None
        total = Decimal(0)
        for x in items:
            total = _CTX.add(total, Decimal(x))
        value = self._r(_CTX.divide(total, len(items)))
        if not steps:
            return f"平均值为 {value}"
        terms = " + ".join(_paren(x) for x in items)
        return f"{terms} = {exact(total)}\n{exact(total)} / {len(items)} = {value}\n平均值为 {value}"

    def _mass(self, q: str, steps: bool) -> Optional[str]:
        m = _MASS.search(q)
        if not m:
            return None
        d, v = m.groups()
        value = self._r(_CTX.multiply(Decimal(d), Decimal(v)))
        return f"{d} * {v} = {value}\n{value} 克" if steps else f"{value} 克"

    def _area(self, q: str, steps: bool) -> Optional[str]:
        m = _AREA.search(q)
        if not m:
            return None
        a, b = m.groups()
        value = self._r(_CTX.multiply(Decimal(a), Decimal(b)))
        return f"{a} * {b} = {value}\n面积为 {value} 平方厘米" if steps else f"面积为 {value} 平方厘米"

    def _sales(self, q: str, steps: bool) -> Optional[str]:
        m = _SALES.search(q)
        if not m:
            return None
        a, p = m.groups()
        factor = _CTX.add(1, _CTX.divide(Decimal(p), 100))
        value = self._r(_CTX.multiply(Decimal(a), factor))
        if not steps:
            return value
        return f"{a} * (1 + {p} / 100) = {a} * {exact(factor)} = {value}"

    def _simplify(self, q: str, steps: bool) -> Optional[str]:
        m = _SIMPLIFY.match(q)
        if not m:
            return None
        p, r = int(m.group(1)), int(m.group(2))
        if r == 0:
            return None
        f = Fraction(p, r)
        answer = f"最简化的形式为：{f.numerator}/{f.denominator}"
        if not steps:
            return answer
        g = math.gcd(p, r)
        return f"{p} 和 {r} 的最大公约数为 {g}\n{p} / {g} = {p // g}\n{r} / {g} = {r // g}\n{answer}"

    def _function(self, q: str, steps: bool) -> Optional[str]:
        m = _FUNCTION.match(q)
        if not m:
            return None
        x, c, n = m.group(1), m.group(2), int(m.group(3))
        if n > 400:
            return None
        value = _EXACT.multiply(Decimal(c), _EXACT.power(Decimal(x), n))
        y = self._r(value)
        if not steps:
            return f"函数的值为：{y}"
        return f"y = {c} * {_paren(x)}^{n} = {y}\n函数的值为：{y}"
