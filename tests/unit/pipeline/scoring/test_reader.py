"""Each rule of the careful answer reader, on outputs of the contest's real
predict runs (the row of predictions_200_base.txt or _finetuned.txt named;
the echoed question already removed, as strip_echo leaves it)."""
import pytest

from mathtune_pipeline.scoring import reader
from mathtune_pipeline.scoring.answers import _Written


@pytest.mark.parametrize("generated, question, kind, value, rule", [
    # base row 19: the answer, then the question again, cut short.
    (" 8230.71 - 2598.23 = 5632.48 8230", "计算 8230.71 - 2598.23 等于多少？", "subtract", 5632.48,
     "statement, then repeated-question"),
    # base row 23: the answer, then a new question.
    (" 5113.34 - 239.46 = 4873.88\n计算 511", "计算 5113.34 - 239.46 等于多少？", "subtract", 4873.88,
     "statement, then new-question"),
    # base row 37: the answer, then a numbered item of its own.
    (" 9129.29 - 6402.63 = 2726.66 2.", "计算 9129.29 - 6402.63 等于多少？", "subtract", 2726.66,
     "statement, then numbered-item"),
    # base row 163: a numbered list: its first item, the rest cut.
    (" 1. 1.265 2. 1.265 3. 1.", "计算 -9576.85 / -7526.45 等于多少？", "divide", 1.265,
     "lone-number, then numbered-item"),
    # base row 41: an equation's unknown, as a fraction.
    ("\n    - 33x = 79\n    - x = 79/33\n   ", "解方程 -33x + 79 = 0", "equation", 79 / 33, "unknown"),
    # base row 103: the same line again and again.
    ("\nx = -30\nx = -30\nx = -30\nx = -30", "解方程 2x + 60 = 0", "equation", -30.0, "unknown, then repetition"),
    # base row 117: a marked answer (是), then the question again.
    (" 126.99 的 1 次方是 161.99 126.99 的 ", "计算 126.99 的 1 次方？", "power", 161.99,
     "marked, then repeated-question"),
    # fine-tuned row 0: a chain: its last link.
    (" -7451.51 - -1709.92 = -7451.51 + 1709.92 = -5741.59", "计算 -7451.51 - -1709.92 等于多少？", "subtract",
     -5741.59, "statement"),
    # fine-tuned row 9: a worked problem: the marked conclusion, not the first step.
    (" \n(19 - 71) / 19 = -3.73\n3.73 * 100 = -373.0\n折扣比例为 -373.0 %",
     "商品原价为 19 元，打折后的价格为 71 元，请计算打折的折扣比例。", "discount", -373.0, "marked"),
    # fine-tuned row 60: a worked problem without a mark: its last statement.
    (" \n17 + 99 + 52 = 168\n168 / 3 = 56.0", "求以下数据的平均值：[17, 99, 52]", "mean", 56.0, "statement"),
    # fine-tuned row 133: a marker with an `=` chain after it, and a unit.
    (" \n面积 = 长 * 宽 = 18 * 34 = 612 平方厘米", "一个长方形的长为 18 厘米，宽为 34 厘米，请计算其面积。", "area", 612.0,
     "statement"),
    # fine-tuned row 100: a number written as a * 10^n.
    (" 475.47 * 475.47 * 475.47 * 475.47 * 475.47 = 1.14 * 10^9", "计算 475.47 的 5 次方？", "power", 1.14e9,
     "statement"),
    # fine-tuned row 5: the value first, then the question's expression.
    (" -9390.8 = -9299.25 * 1012.66", "计算 -9299.25 * 1012.66 等于多少？", "multiply", -9390.8, "statement"),
])
def test_the_answer_committed_to(generated, question, kind, value, rule):
    reading = reader.read(generated, question, kind)
    assert reading.value == pytest.approx(value) and reading.rule == rule


@pytest.mark.parametrize("generated, question, kind, rule", [
    # base row 1: a new (numbered) question before any answer.
    (" 2. 请计算 1.5 + 2.5 + 3.5", "计算 -1337.47 + 5068.04 等于多少？", "add", "no answer before numbered-item"),
    # base row 101: the question again before any answer.
    (" 8883.67 - 5078.04 等于多少？ 8883.67", "计算 5078.04 - 8883.67 等于多少？", "subtract",
     "no answer before new-question"),
    # base row 4: cut off in the middle of the expression.
    (" 1075.16 - 8090.56 = 1075.16 - 809", "计算 1075.16 - 8090.56 等于多少？", "subtract", "no answer"),
    # base row 22: cut off right after an operator.
    (" 7059.64 - (-1295.35) = 7059.64 + ", "计算 -1295.35 + 7059.64 等于多少？", "add", "no answer"),
    # base row 3: the question's own numbers listed are not an answer.
    (" 1. -8173.86 2. -3985.41 3. -", "计算 -3985.41 - -8173.86 等于多少？", "subtract",
     "no answer before numbered-item"),
    # base row 139: a quiz of its own.
    (" A. 9 克 B. 9 克 C. 9 克 D. 9 克", "已知密度为 9 克/立方厘米，体积为 1 立方厘米，请计算质量。", "mass",
     "no answer before multiple-choice"),
    # base row 17: the question restated, unanswered.
    (" 6974.95 的平方根是多少？ 6974.95 的平方根是", "计算 6974.95 的平方根？", "sqrt", "no answer before new-question"),
    # base row 62: an equation restated is not its solution.
    ("\n    - 97x + 92 = 0\n    - 97x = -", "解方程 97x + 92 = 0", "equation", "no answer"),
    # base row 175: code.
    ("。\n\n\n```python\n# 1. 使用列表推导式\na = [29,", "求以下数据的平均值：[29, 21, 47]", "mean",
     "no answer before code"),
    # fine-tuned row 190: a malformed number is no number (not 18499).
    ("\xa0\n263.65 * 263.65 * 263.65 = 184996.5.3", "计算 263.65 的 3 次方？", "power", "no answer"),
])
def test_no_answer(generated, question, kind, rule):
    reading = reader.read(generated, question, kind)
    assert reading.value is None and reading.rule == rule


def test_a_marker_that_ends_its_line_heads_a_worked_solution():
    """`答案：` on its own line (another template's answer slot) marks no value: the solution under it does."""
    reading = reader.read("答案： \n17 + 99 + 52 = 168\n168 / 3 = 56.0", "求以下数据的平均值：[17, 99, 52]", "mean")
    assert reading.value == 56.0


def test_one_operation_keeps_its_first_answer_and_ignores_a_check():
    """After the answer, a check of it (`-4705.89 - 3030.00 = -7735.89`) is not the answer."""
    reading = reader.read(" -4705.89\n-4705.89 - 3030.00 = -7735.89", "计算 -1675.89 + -3030.00 等于多少？", "add")
    assert reading.value == -4705.89


def test_simplify_answers_keep_the_fraction_as_written():
    reading = reader.read(" 6/8", "化简分数 6/8", "simplify")
    assert isinstance(reading.value, _Written) and not reading.value.reduced
    assert reader.read(" 3/4", "化简分数 6/8", "simplify").value.reduced
