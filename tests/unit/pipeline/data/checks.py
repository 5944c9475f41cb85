"""Independent checks for the tests: the true type of a contest row from its
solution's shape, and a small exact evaluator for the arithmetic in an answer.

Nothing here imports the code under test.
"""
import re
from decimal import Decimal
from fractions import Fraction

NUM = r"-?\d+(?:\.\d+)?"


def true_type_from_solution(problem: str, solution: str) -> str:
    """What kind of problem a real row is, read from the shape of its (given) solution."""
    s = solution.strip()
    if "\\boxed" in s or re.search(r"[A-Za-z]{4,}", problem):
        return "english"
    if s.startswith("√"):
        return "sqrt"
    if "方程的解为" in s:
        return "equation"
    if "面积为" in s:
        return "area"
    if "平均值为" in s:
        return "mean"
    if "函数的值为" in s:
        return "function"
    if "最简化" in s:
        return "simplify"
    if s.endswith("克"):
        return "mass"
    if s.startswith("= ("):
        return "discount"
    if re.match(r"^= " + NUM + r" \* " + NUM + r" = ", s):
        return "sales"
    if re.match(r"^" + NUM + r"\^\d+ = ", s):
        return "power"
    m = re.match(r"^(" + NUM + r") ([-+*/]) (" + NUM + r") = ", s)
    if m:
        return {"+": "add", "-": "subtract", "*": "multiply", "/": "divide"}[m.group(2)]
    raise AssertionError(f"no known solution shape: {solution!r}")


_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d+)?(?:E[+-]?\d+)?)|([-+*/^()√]))")


class NotArithmetic(ValueError):
    pass


def evaluate(expr: str) -> Fraction:
    """Exact value of an arithmetic expression: numbers, + - * / ^ ( ) √, unary minus."""
    tokens, pos = [], 0
    expr = expr.strip()
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m or m.end() == pos:
            raise NotArithmetic(expr)
        tokens.append(m.group(1) or m.group(2))
        pos = m.end()
    if not tokens:
        raise NotArithmetic(expr)
    value, rest = _sum(tokens)
    if rest:
        raise NotArithmetic(expr)
    return value


def _sum(t):
    value, t = _product(t)
    while t and t[0] in "+-":
        op, (rhs, t) = t[0], _product(t[1:])
        value = value + rhs if op == "+" else value - rhs
    return value, t


def _product(t):
    value, t = _unary(t)
    while t and t[0] in "*/":
        op, (rhs, t) = t[0], _unary(t[1:])
        value = value * rhs if op == "*" else value / rhs
    return value, t


def _unary(t):
    if t and t[0] == "-":
        value, t = _unary(t[1:])
        return -value, t
    return _power(t)


def _power(t):
    base, t = _atom(t)
    if t and t[0] == "^":
        exp, t = _unary(t[1:])
        assert exp.denominator == 1
        return base ** int(exp), t
    return base, t


def _atom(t):
    if not t:
        raise NotArithmetic("empty")
    if t[0] == "(":
        value, t = _sum(t[1:])
        if not t or t[0] != ")":
            raise NotArithmetic("unbalanced")
        return value, t[1:]
    if t[0] == "√":
        inner, t = _atom(t[1:])
        root = Decimal(inner.numerator) / Decimal(inner.denominator)
        return Fraction(root.sqrt(_ctx())), t   # irrational: 80 digits, far below any rounding tested
    if t[0][0].isdigit():
        return Fraction(Decimal(t[0])), t[1:]
    raise NotArithmetic(t[0])


def _ctx():
    from decimal import Context
    return Context(prec=80)


def is_rounding_of(printed: str, exact: Fraction, decimals: int) -> bool:
    """`printed` is `exact` rounded to `decimals` places (fixed form), or to its own
    last digit with at least 12 significant digits (E form, for huge values)."""
    value = Fraction(Decimal(printed))
    if "E" in printed:
        mantissa = printed.split("E")[0].replace("-", "").replace(".", "").lstrip("0")
        exponent = Decimal(printed).adjusted() - (len(mantissa) - 1)
        return len(mantissa) >= 12 and abs(value - exact) <= Fraction(1, 2) * Fraction(10) ** exponent
    places = len(printed.split(".")[1]) if "." in printed else 0
    return places <= decimals and abs(value - exact) <= Fraction(1, 2) * Fraction(1, 10 ** decimals)
