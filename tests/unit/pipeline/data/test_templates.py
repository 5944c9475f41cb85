"""Templates: prompt and response apart, the seeds' shapes, system prompt configurable."""
import pytest

from mathtune_pipeline.data.templates import Template
from mathtune_pipeline.errors import SpecError


def test_alpaca_with_and_without_input():
    prompt, response = Template("alpaca").render("计算 1 + 2 等于多少？", "", "1 + 2 = 3")
    assert prompt == ("Below is an instruction that describes a task. Write a response that appropriately "
                      "completes the request.\n\n### Instruction:\n计算 1 + 2 等于多少？\n\n### Response:")
    assert response == "1 + 2 = 3"
    prompt, _ = Template("alpaca").render("翻译", "hello", "你好")
    assert "paired with an input" in prompt and prompt.endswith("### Input:\nhello\n\n### Response:")
    prompt, _ = Template("alpaca", "Solve the grade school math problem.").render("q", "", "a")
    assert prompt.startswith("Solve the grade school math problem.\n\n### Instruction:\nq")


def test_vicuna_conversation_of_seed004():
    prompt, response = Template("vicuna").render("题目：1+1=?", "", "2")
    assert prompt.startswith("A chat between a curious user and an artificial intelligence assistant.")
    assert prompt.endswith(" USER: 题目：1+1=? ASSISTANT:") and response == " 2"
    prompt, _ = Template("vicuna", "你是数学老师。").render("q", "", "a")
    assert prompt == "你是数学老师。 USER: q ASSISTANT:"


def test_multiple_choice_of_seed002():
    prompt, response = Template("multiple-choice").render("2+2?\nA. 3\nB. 4\nC. 5\nD. 6", "", "B")
    assert "### Instruction:\n根据问题选择正确答案\n\n### Input:\n2+2?\nA. 3\nB. 4" in prompt and response == "B"


def test_unknown_template_names_the_field():
    with pytest.raises(SpecError) as err:
        Template("chatml")
    assert err.value.field == "spec.data.template.name"
