"""Prompt templates: alpaca (seeds 000/003), fastchat vicuna (seed 004), multiple choice (seed 002).

A template turns (instruction, input, output) into a prompt and a response kept
apart: tokenize masks the labels over exactly the prompt, so the boundary must
never be guessed from the text afterwards (MindFormers' own script guesses it).
"""
from dataclasses import dataclass
from typing import Callable, Dict, Tuple

from ..errors import SpecError

ALPACA_SYSTEM = ("Below is an instruction that describes a task. "
                 "Write a response that appropriately completes the request.")
ALPACA_SYSTEM_WITH_INPUT = ("Below is an instruction that describes a task, paired with an input that provides "
                            "further context. Write a response that appropriately completes the request.")
# fastchat's vicuna_v1.1 system message; roles USER/ASSISTANT, separators " " and "</s>".
VICUNA_SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. "
                 "The assistant gives helpful, detailed, and polite answers to the user's questions.")
# Seed 002's instruction for MMLU/CMMLU rows ("choose the right answer to the question").
MULTIPLE_CHOICE_INSTRUCTION = "根据问题选择正确答案"


def _alpaca(system: str, instruction: str, input_text: str, output: str) -> Tuple[str, str]:
    if input_text:
        head = system or ALPACA_SYSTEM_WITH_INPUT
        return f"{head}\n\n### Instruction:\n{instruction}\n\n### Input:\n{input_text}\n\n### Response:", output
    return f"{system or ALPACA_SYSTEM}\n\n### Instruction:\n{instruction}\n\n### Response:", output


def _vicuna(system: str, instruction: str, input_text: str, output: str) -> Tuple[str, str]:
    question = f"{instruction}\n{input_text}" if input_text else instruction
    # The separator before the answer belongs to the response, so the prompt
    # does not end in a lone space token.
    return f"{system or VICUNA_SYSTEM} USER: {question} ASSISTANT:", f" {output}"


def _multiple_choice(system: str, instruction: str, input_text: str, output: str) -> Tuple[str, str]:
    # Seed 002: instruction = the fixed request, input = question with its options.
    question = f"{instruction}\n{input_text}" if input_text else instruction
    return (f"{ALPACA_SYSTEM_WITH_INPUT}\n\n### Instruction:\n{system or MULTIPLE_CHOICE_INSTRUCTION}"
            f"\n\n### Input:\n{question}\n\n### Response:", output)


TEMPLATES: Dict[str, Callable[[str, str, str, str], Tuple[str, str]]] = {
    "alpaca": _alpaca,
    "vicuna": _vicuna,
    "multiple-choice": _multiple_choice,
}


@dataclass(frozen=True)
class Template:
    name: str
    system_prompt: str = ""

    def __post_init__(self):
        if self.name not in TEMPLATES:
            raise SpecError("spec.data.template.name", f"one of {', '.join(TEMPLATES)} (got {self.name!r})")
        if not isinstance(self.system_prompt, str):
            raise SpecError("spec.data.template.systemPrompt", "a string")

    def render(self, instruction: str, input_text: str, output: str) -> Tuple[str, str]:
        """(prompt, response)."""
        return TEMPLATES[self.name](self.system_prompt, instruction, input_text, output)
