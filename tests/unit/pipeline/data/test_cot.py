"""Chain of thought: every generated answer is the exact value correctly rounded,
checked row by row with an evaluator that shares no code with the generator."""
import random
import re
from fractions import Fraction
from math import gcd

import pytest

from mathtune_pipeline.data import types as T
from mathtune_pipeline.data.cot import ChainOfThought
from mathtune_pipeline.data.loaders import unwrap_prompt
from mathtune_pipeline.data.synth import distinct_rows

from .checks import NUM, NotArithmetic, evaluate, is_rounding_of, true_type_from_solution

N = r"(" + NUM + r")"


def expected_answer(kind: str, q: str) -> Fraction:
    """The exact answer, computed here from the question alone."""
    F = lambda s: Fraction(s)  # noqa: E731 - Fraction parses decimal strings exactly
    if kind in (T.ADD, T.SUBTRACT, T.MULTIPLY, T.DIVIDE):
        a, op, b = re.search(N + r" ([-+*/]) " + N, q).groups()
        return {"+": F(a) + F(b), "-": F(a) - F(b), "*": F(a) * F(b), "/": F(a) / F(b)}[op]
    if kind == T.POWER:
        a, n = re.search(N + r" 的 (\d+) 次方", q).groups()
        return F(a) ** int(n)
    if kind == T.SQRT:
        return evaluate("√" + re.search(N, q).group(1))
    if kind == T.EQUATION:
        k, sign, b = re.search(N + r"x ([-+]) " + N, q).groups()
        return -(F(b) if sign == "+" else -F(b)) / F(k)
    if kind == T.MEAN:
        values = [F(v) for v in re.findall(NUM, q.split("：")[1])]
        return sum(values) / len(values)
    if kind in (T.AREA, T.MASS):
        a, b = re.findall(NUM, q)[:2]
        return F(a) * F(b)
    if kind == T.DISCOUNT:
        a, b = re.findall(NUM, q)[:2]
        return (F(a) - F(b)) / F(a) * 100
    if kind == T.SALES:
        a, p = re.findall(NUM, q)[:2]
        return F(a) * (1 + F(p) / 100)
    if kind == T.FUNCTION:
        x, c, n = re.search(r"x = " + N + r" 时，求函数 y = " + N + r"x\^(\d+)", q).groups()
        return F(c) * F(x) ** int(n)
    raise AssertionError(kind)


def final_answer(response: str) -> str:
    last = response.strip().split("\n")[-1]
    numbers = re.findall(r"-?\d+(?:\.\d+)?(?:E[+-]?\d+)?", last)
    assert numbers, f"no number in the last line of {response!r}"
    return numbers[-1]


def check_chains(response: str, decimals: int) -> int:
    """Every `a = b = c` chain: exact links equal the first side, the last side is its rounding."""
    checked = 0
    for line in response.split("\n"):
        sides = [s for s in line.split(" = ")]
        values = []
        for side in sides:
            try:
                values.append((side.strip(), evaluate(side)))
            except NotArithmetic:
                values.append((side.strip(), None))
        known = [(s, v) for s, v in values if v is not None]
        if len(known) < 2:
            continue
        first = known[0][1]
        for text, value in known[1:-1]:
            assert value == first, f"{text!r} != {known[0][0]!r} in {line!r}"
        text, value = known[-1]
        assert value == first or is_rounding_of(text, first, decimals), f"{text!r} is not {known[0][0]!r} in {line!r}"
        checked += 1
    return checked


def check_row(kind: str, question: str, response: str, decimals: int) -> None:
    if kind == T.SIMPLIFY:
        p, q = map(int, re.search(r"(\d+)/(\d+)", question).groups())
        a, b = map(int, re.search(r"：(-?\d+)/(\d+)$", response).groups())
        assert Fraction(a, b) == Fraction(p, q) and gcd(a, b) == 1, response
        return
    exact = expected_answer(kind, question)
    answer = final_answer(response)
    assert is_rounding_of(answer, exact, decimals), f"{question!r}: {answer} is not {float(exact)} to {decimals} places"
    check_chains(response, decimals)


def test_every_answer_on_the_real_rows_is_right(contest_200):
    cot = ChainOfThought(decimals=2)
    for i, row in enumerate(contest_200):
        question = unwrap_prompt(row["problem"])
        kind = true_type_from_solution(question, row["solution"])
        response = cot.solve(kind, question)
        assert response is not None, f"row {i}: {question!r} did not parse"
        check_row(kind, question, response, 2)


@pytest.mark.parametrize("decimals", [0, 2, 4])
@pytest.mark.parametrize("with_steps", [True, False])
def test_every_type_every_setting(decimals, with_steps):
    rng = random.Random(decimals)
    kinds = [k for k in T.CONTEST_TYPES if k != T.ENGLISH]
    cot = ChainOfThought(decimals=decimals, step_types=kinds if with_steps else [])
    for kind in kinds:
        for question, _ in distinct_rows(kind, 30, rng):
            response = cot.solve(kind, question)
            assert response is not None, question
            check_row(kind, question, response, decimals)


def test_sign_normalisation_and_the_steps_of_seed000():
    cot = ChainOfThought(decimals=2)
    assert cot.solve(T.SUBTRACT, "计算 -7451.51 - -1709.92 等于多少？") == \
        "-7451.51 - -1709.92 = -7451.51 + 1709.92 = -5741.59"
    assert cot.solve(T.ADD, "计算 7310.69 + -6470.86 等于多少？") == "7310.69 + -6470.86 = 7310.69 - 6470.86 = 839.83"
    # Seed 000 keeps multiply in its bare shape, only the result is (correctly) rounded.
    assert cot.solve(T.MULTIPLY, "计算 -6211.70 * -6871.61 等于多少？") == "-6211.70 * -6871.61 = 42684379.84"
    assert cot.solve(T.AREA, "一个长方形的长为 48 厘米，宽为 7 厘米，请计算其面积。") == "48 * 7 = 336\n面积为 336 平方厘米"
    assert cot.solve(T.EQUATION, "解方程 -13x + 10 = 0") == "-13x = -10\nx = -10 / (-13)\nx = 0.77\n方程的解为：0.77"
    assert cot.solve(T.ENGLISH, "What is 1+1?") is None
    assert cot.solve(T.DIVIDE, "计算 1 / 0 等于多少？") is None


def test_rounding_is_half_up_on_exact_decimals():
    cot = ChainOfThought(decimals=2, step_types=[])
    # 0.125 is exact in decimal: half-up gives 0.13 (binary floats and round() give 0.12).
    assert cot.solve(T.DIVIDE, "计算 1 / 8 等于多少？") == "1 / 8 = 0.13"
    assert cot.solve(T.DIVIDE, "计算 -1 / 8 等于多少？") == "-1 / 8 = -0.13"
