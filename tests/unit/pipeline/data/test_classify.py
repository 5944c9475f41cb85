"""Classification: every real row gets its true type; spec rules come first; bad rules are named."""
import pytest

from mathtune_pipeline.data import types as T
from mathtune_pipeline.data.classify import Classifier, classify_builtin, parse_rules
from mathtune_pipeline.data.loaders import unwrap_prompt
from mathtune_pipeline.data.synth import distinct_rows
from mathtune_pipeline.errors import SpecError

from .checks import true_type_from_solution


def test_every_real_row_gets_its_true_type(contest_200):
    seen = {}
    for i, row in enumerate(contest_200):
        question = unwrap_prompt(row["problem"])
        assert question, f"row {i}: no instruction inside the prompt"
        truth = true_type_from_solution(question, row["solution"])
        assert classify_builtin(question) == truth, f"row {i}: {question!r}"
        seen[truth] = seen.get(truth, 0) + 1
    # The fixture covers 13 of the 15 types (no English, no simplify rows in it).
    assert len(seen) == 13, seen


@pytest.mark.parametrize("kind", T.CONTEST_TYPES)
def test_every_contest_shape_is_recognised(kind):
    import random
    for question, _ in distinct_rows(kind, 40, random.Random(7)):
        assert classify_builtin(question) == kind, question


def test_seed000_space_stripped_operations_and_unknown_rows():
    assert classify_builtin("计算-12.5*-3等于多少？") == T.MULTIPLY
    assert classify_builtin("计算 -7451.51 - -1709.92 等于多少？") == T.SUBTRACT
    assert classify_builtin("计算 3 + -2 等于多少？") == T.ADD
    assert classify_builtin("小明有三个苹果，吃了一个，还剩几个？") == T.OTHER
    assert classify_builtin("What is 2 + 2?") == T.ENGLISH


def test_spec_rules_are_tried_before_the_builtins():
    rules = parse_rules([{"type": "big_add", "prefix": "计算 9", "contains": " + "},
                         {"type": "apples", "regex": "苹果"}])
    classify = Classifier(rules)
    assert classify("计算 9000.00 + 1.00 等于多少？") == "big_add"
    assert classify("计算 1000.00 + 1.00 等于多少？") == T.ADD
    assert classify("小明有三个苹果") == "apples"
    assert classify("小明有三个梨") == T.OTHER


@pytest.mark.parametrize("raw, field", [
    ("not a list", "spec.data.classify.extraRules"),
    ([{"prefix": "x"}], "spec.data.classify.extraRules[0].type"),
    ([{"type": "Bad Name", "prefix": "x"}], "spec.data.classify.extraRules[0].type"),
    ([{"type": "ok"}], "spec.data.classify.extraRules[0]"),
    ([{"type": "ok", "regex": "("}], "spec.data.classify.extraRules[0].regex"),
    ([{"type": "ok", "prefixx": "a"}], "spec.data.classify.extraRules[0].prefixx"),
])
def test_bad_rules_name_the_field(raw, field):
    with pytest.raises(SpecError) as err:
        parse_rules(raw)
    assert err.value.field == field
