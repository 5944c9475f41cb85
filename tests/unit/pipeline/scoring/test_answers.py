"""Math answer extraction and the correctness rule."""
from fractions import Fraction

import pytest

from mathtune_pipeline.scoring import answers, choice


@pytest.mark.parametrize("text, want", [
    ("-7451.51 - -1709.92 = -7451.51 + 1709.92 = -5741.59", -5741.59),
    ("面积为1260平方厘米", 1260.0),                       # next to CJK characters
    ("函数的值为：5.633537870511922e+67", 5.633537870511922e+67),  # E notation
    ("y = 1.5E-3", 1.5e-3),
    ("今年的销售额为 1,234,567.89 万元", 1234567.89),      # thousands separators
    ("平均值为: [29, 21, 47] 中 32.33", 32.33),            # a list is not one number
    ("x = −2.55", -2.55),                                 # Unicode minus
    ("答案是 .5", 0.5),
    ("no number at all", None),
])
def test_last_number(text, want):
    assert answers.last_number(text) == want


def test_simplify_needs_the_reduced_fraction():
    reference = answers.extract("最简化的形式为：3/4", answers.SIMPLIFY)
    assert answers.is_correct(answers.extract("最简化的形式为：3/4", answers.SIMPLIFY), reference)
    # The same value, not reduced: wrong (the task is to reduce it).
    assert not answers.is_correct(answers.extract("最简化的形式为：6/8", answers.SIMPLIFY), reference)
    assert not answers.is_correct(answers.extract("最简化的形式为：2/3", answers.SIMPLIFY), reference)
    # A fraction equal to an integer may be written as the integer.
    assert answers.is_correct(answers.extract("5", answers.SIMPLIFY), answers.extract("5/1", answers.SIMPLIFY))
    # A decimal is not a fraction answer.
    assert not answers.is_correct(answers.extract("0.75", answers.SIMPLIFY), reference)
    assert answers.extract("3/0", answers.SIMPLIFY) is None


def test_tolerance_is_absolute_and_configurable():
    assert answers.is_correct(839.83, 839.83)
    assert answers.is_correct(839.835, 839.83)
    assert not answers.is_correct(839.85, 839.83)
    assert answers.is_correct(839.85, 839.83, tolerance=0.05)
    assert not answers.is_correct(None, 1.0)
    assert not answers.is_correct(1.0, Fraction(1, 1))


def test_echo_removed_in_each_form_seen():
    prompt = "Below is an instruction...\n\n### Instruction:\n计算 1 + 2 等于多少？\n\n### Response:"
    question = "计算 1 + 2 等于多少？"
    assert answers.strip_echo(prompt + " 1 + 2 = 3", prompt, question) == " 1 + 2 = 3"
    assert answers.strip_echo(question + " 3", prompt, question) == " 3"
    # The echo with its whitespace changed: cut at the response marker.
    assert answers.strip_echo("Below ...\n### Response: 3", prompt, question) == " 3"
    assert answers.strip_echo("3", prompt, question) == "3"


@pytest.mark.parametrize("text, want", [
    ("答案是 B", "B"), ("Answer: (C)", "C"), ("D. 42", "D"), ("我选A", "A"), ("(A) because", "A"),
    ("答案：（D）", "D"), ("nothing", None), ("Apple", None),
])
def test_multiple_choice(text, want):
    assert choice.extract_choice(text) == want


def test_multiple_choice_accuracy():
    assert choice.accuracy(["A", None, "C"], ["A", "B", "d"]) == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        choice.accuracy(["A"], [])
