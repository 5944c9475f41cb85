"""A contest-scale synthetic train.json for benchmarks.

The real file (809,993 rows) is not ours to ship, so benchmarks run on a file
with the same shape: the 15 question shapes of REFERENCE §2, seed 000's type
counts after dedupe, and the same duplicate rate (809,993 -> 548,942). The
answers follow the original data's bare form (no chain of thought); like the
original they come from float arithmetic, which is why `prepare` recomputes
them exactly instead of trusting them.

Types whose number space is small are enumerated (mass: density and volume
1..10 give exactly the 100 distinct rows the real data has; simplify: p < q <=
10 gives its 45), the rest are drawn until enough distinct rows exist.
"""
import json
import math
import random
from typing import Callable, Dict, Iterator, List, Tuple

from . import types as T

Row = Tuple[str, str]


def _money(rng: random.Random, low: float = -10000, high: float = 10000) -> str:
    return f"{rng.uniform(low, high):.2f}"


def _arith(op: str) -> Callable[[random.Random], Row]:
    fn = {"+": lambda a, b: a + b, "-": lambda a, b: a - b,
          "*": lambda a, b: a * b, "/": lambda a, b: a / b}[op]

    def make(rng: random.Random) -> Row:
        a, b = _money(rng), _money(rng)
        if op == "/" and float(b) == 0:
            b = "1.00"
        return f"计算 {a} {op} {b} 等于多少？", f"{a} {op} {b} = {round(fn(float(a), float(b)), 2)}"
    return make


def _sqrt(rng: random.Random) -> Row:
    a = _money(rng, 0, 10000)
    return f"计算 {a} 的平方根？", f"√{a} = {round(math.sqrt(float(a)), 2)}"


def _power(rng: random.Random) -> Row:
    a, n = _money(rng, -1000, 1000), rng.randint(1, 5)
    return f"计算 {a} 的 {n} 次方？", f"{a}^{n} = {round(float(a) ** n, 2)}"


def _mean(rng: random.Random) -> Row:
    values = [rng.randint(1, 100) for _ in range(rng.randint(3, 8))]
    return (f"求以下数据的平均值：[{', '.join(map(str, values))}]",
            f"平均值为 {round(sum(values) / len(values), 2)}")


def _function(rng: random.Random) -> Row:
    x, c, n = f"{rng.uniform(0, 10):.2f}", rng.randint(1, 100), rng.randint(1, 100)
    return f"当 x = {x} 时，求函数 y = {c}x^{n} 的值", f"函数的值为：{c * float(x) ** n}"


def _english(rng: random.Random) -> Row:
    kind = rng.randrange(4)
    if kind == 0:
        n, m = rng.randint(100, 10 ** 6), rng.randint(2, 97)
        return (f"What is the remainder when ${n}$ is divided by ${m}$?",
                f"Dividing, ${n} = {m} \\cdot {n // m} + {n % m}$, so the remainder is $\\boxed{{{n % m}}}$.")
    if kind == 1:
        r1, r2 = rng.randint(-50, 50), rng.randint(-50, 50)
        return (f"Find the sum of the roots of $x^2 {-(r1 + r2):+d}x {r1 * r2:+d} = 0$.",
                f"By Vieta's formulas the sum of the roots is $-\\frac{{{-(r1 + r2)}}}{{1}} = \\boxed{{{r1 + r2}}}$.")
    if kind == 2:
        n = rng.randint(5, 60)
        k = rng.randint(1, n - 1)
        return (f"Compute $\\dbinom{{{n}}}{{{k}}}$.",
                f"$\\dbinom{{{n}}}{{{k}}} = \\frac{{{n}!}}{{{k}!\\,{n - k}!}} = \\boxed{{{math.comb(n, k)}}}$.")
    a, b, c = rng.randint(-99, 99), rng.randint(-99, 99), rng.randint(-99, 99)
    return (f"If $f(x) = {a}x^2 {b:+d}$, what is the value of $f({c})$?",
            f"$f({c}) = {a}\\cdot({c})^2 {b:+d} = \\boxed{{{a * c * c + b}}}$.")


def _grid(make: Callable[..., Row], *ranges: range) -> Callable[[random.Random, int], List[Row]]:
    """Types with a small number space: enumerate it, then draw without repeats."""
    def draw(rng: random.Random, n: int) -> List[Row]:
        space = [(a, b) for a in ranges[0] for b in ranges[1]]
        space = [pair for pair in space if make(*pair) is not None]
        if n > len(space):
            raise ValueError(f"only {len(space)} distinct rows exist, {n} asked")
        return [make(*pair) for pair in rng.sample(space, n)]
    return draw


def _area(a: int, b: int) -> Row:
    return f"一个长方形的长为 {a} 厘米，宽为 {b} 厘米，请计算其面积。", f"面积为 {a * b} 平方厘米"


def _mass(d: int, v: int) -> Row:
    return f"某物体的密度为 {d} 克/立方厘米，体积为 {v} 立方厘米，请计算该物体的质量。", f"{d * v} 克"


def _discount(a: int, b: int) -> Row:
    return (f"商品原价为 {a} 元，打折后的价格为 {b} 元，请计算打折的折扣比例。",
            f"{round((a - b) / a * 100, 2)}")


def _sales(a: int, p: int) -> Row:
    return f"去年销售额为 {a} 万元，今年销售额增加了 {p}%，请计算今年的销售额。", f"{round(a * (1 + p / 100), 2)}"


def _simplify(p: int, q: int):
    if p >= q:
        return None
    g = math.gcd(p, q)
    return f"将分数 {p}/{q} 进行简化。", f"最简化的形式为：{p // g}/{q // g}"


def _equation(k: int, b: int):
    if k == 0:
        return None
    return f"解方程 {k}x + {b} = 0", f"方程的解为：{round(-b / k, 2)}"


_DRAWN: Dict[str, Callable[[random.Random], Row]] = {
    T.ADD: _arith("+"), T.SUBTRACT: _arith("-"), T.MULTIPLY: _arith("*"), T.DIVIDE: _arith("/"),
    T.SQRT: _sqrt, T.POWER: _power, T.MEAN: _mean, T.FUNCTION: _function, T.ENGLISH: _english,
}
_ENUMERATED = {
    T.AREA: _grid(_area, range(1, 101), range(1, 101)),
    T.MASS: _grid(_mass, range(1, 11), range(1, 11)),
    T.DISCOUNT: _grid(_discount, range(1, 101), range(1, 101)),
    T.SALES: _grid(_sales, range(1, 101), range(1, 101)),
    T.SIMPLIFY: _grid(_simplify, range(1, 11), range(1, 11)),
    T.EQUATION: _grid(_equation, range(-100, 101), range(-100, 101)),
}


def distinct_rows(kind: str, n: int, rng: random.Random) -> List[Row]:
    if kind in _ENUMERATED:
        return _ENUMERATED[kind](rng, n)
    make, seen = _DRAWN[kind], set()
    out: List[Dict[str, str]] = []
    while len(out) < n:
        row = make(rng)
        if row not in seen:
            seen.add(row)
            out.append(row)
    return out


def synth_rows(total: int = T.CONTEST_ROWS, seed: int = 0) -> Iterator[Row]:
    """`total` rows: the Chinese part (with duplicates) shuffled, then the English part.

    Counts scale with `total` (the real file's shape at 809,993); duplicates
    fall on the Chinese types in proportion to their size, as in the real
    file, whose English tail is all distinct.
    """
    rng = random.Random(seed)
    scale = total / T.CONTEST_ROWS
    distinct = {k: max(1, round(v * scale)) for k, v in T.CONTEST_COUNTS_AFTER_DEDUPE.items()}
    english = distinct.pop(T.ENGLISH)
    chinese_total = total - english
    duplicates = chinese_total - sum(distinct.values())
    if duplicates < 0:
        raise ValueError(f"--rows {total} is too small for the 15 types")
    chinese: List[Row] = []
    weight = sum(distinct.values())
    remaining = duplicates
    kinds = list(distinct)
    for i, kind in enumerate(kinds):
        rows = distinct_rows(kind, distinct[kind], rng)
        extra = remaining if i == len(kinds) - 1 else round(duplicates * distinct[kind] / weight)
        remaining -= extra
        chinese.extend(rows)
        chinese.extend(rows[rng.randrange(len(rows))] for _ in range(extra))
    rng.shuffle(chinese)
    yield from chinese
    yield from distinct_rows(T.ENGLISH, english, rng)


def write_synth(path, total: int = T.CONTEST_ROWS, seed: int = 0) -> int:
    """Write JSON lines like train.json; returns the row count."""
    n = 0
    with open(path, "w", encoding="utf-8") as fh:
        batch = []
        for problem, solution in synth_rows(total, seed):
            batch.append(json.dumps({"problem": problem, "solution": solution}, ensure_ascii=False))
            n += 1
            if len(batch) >= 10000:
                fh.write("\n".join(batch) + "\n")
                batch = []
        if batch:
            fh.write("\n".join(batch) + "\n")
    return n
