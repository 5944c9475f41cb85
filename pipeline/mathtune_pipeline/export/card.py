"""The exported model's card (README.md): what the model is and how well it does. Pure.

Front matter as the Hugging Face hub reads it (library_name, base_model,
tags), then the run, the recipe, the data with its counts and leakage, the
math accuracy under both scoring rules (the careful reader and the
contest's last-number rule) per type, and SQuAD F1/EM against the base with
the gate.
"""
from typing import Any, Dict, List, Mapping, Optional

from mathtune_api import MathFinetuneSpec as Spec

from ..data.sources import shown


def _pct(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _num(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def render(*, run: str, fmt: str, base_model: str, spec: Spec, report: Mapping[str, Any],
           prepare: Mapping[str, Any], epoch: int) -> str:
    lora, training, data = spec.lora, spec.training, spec.data
    counts = prepare.get("counts") or {}
    source = prepare.get("source") or {}
    leakage = counts.get("leakage") or {}
    gate = report.get("gate") or {}
    lines: List[str] = [
        "---",
        f"library_name: {'peft' if fmt == 'peft' else 'transformers'}",
        f"base_model: {base_model}",
        "pipeline_tag: text-generation",
        "tags: [lora, math, mindformers, mathfinetune]",
        "---",
        "",
        f"# {run}: a LoRA math fine-tune of {base_model}",
        "",
        ("The LoRA adapter, in PEFT's format: load it on the base model with `peft.PeftModel.from_pretrained`."
         if fmt == "peft" else
         "The fine-tuned model with the LoRA folded into its weights, in Hugging Face's format: "
         "`transformers.AutoModelForCausalLM.from_pretrained`."),
        f"Made by the MathFinetune run `{run}` with MindSpore and MindFormers; checkpoint of epoch {epoch}.",
        "",
        "## Recipe",
        "",
        f"- model family `{spec.model.family}`, base `{base_model}`",
        f"- LoRA rank {lora.rank}, alpha {lora.alpha}, dropout {lora.dropout}, modules {', '.join(lora.target_modules)}",
        f"- {training.epochs} epochs, batch {training.batch_size}, "
        f"learning rate {training.lr_schedule.learning_rate}, optimizer {training.optimizer.type}",
        f"- template `{data.template.name}`, chain of thought "
        f"{'on' if data.chain_of_thought.enabled else 'off'}, sequence length {data.seq_length}",
        "",
        "## Data",
        "",
        "| source | rows trained |",
        "|---|---|",
        f"| {source.get('uri') or shown(data.source.uri)} | {counts.get('sampled', 'n/a')} |",
    ]
    for item in counts.get("mix") or []:
        lines.append(f"| {item.get('uri', '')} (mix `{item.get('name', '')}`) | {item.get('rows', 'n/a')} |")
    lines += [
        "",
        f"Rows trained in all: {counts.get('trained', 'n/a')}. Leakage check (`{leakage.get('mode', 'n/a')}`): "
        f"{leakage.get('exact', 0)} exact and {leakage.get('near', 0)} near copies of scored rows found, "
        f"{leakage.get('dropped', 0)} dropped.",
        "",
        "## Results",
        "",
        "| | base | this model |",
        "|---|---|---|",
        f"| math accuracy (careful reader) | {_pct(report.get('baseAccuracy'))} | {_pct(report.get('mathAccuracy'))} |",
        f"| math accuracy (contest rule: last number) | {_pct(report.get('baseAccuracyContestRule'))} | "
        f"{_pct(report.get('mathAccuracyContestRule'))} |",
        f"| SQuAD F1 | {_num(report.get('baseF1'))} | {_num(report.get('f1'))} |",
        f"| SQuAD EM | {_num(report.get('baseEm'))} | {_num(report.get('em'))} |",
        "",
    ]
    per_type: Dict[str, Any] = report.get("perType") or {}
    if per_type:
        contest = report.get("perTypeContestRule") or {}
        lines += ["| problem type | accuracy (careful reader) | accuracy (contest rule) |", "|---|---|---|"]
        lines += [f"| {t} | {_pct(v)} | {_pct(contest.get(t))} |" for t, v in sorted(per_type.items())]
        lines.append("")
    verdict = "passed" if report.get("gatePassed") else "FAILED"
    lines += [f"Original-ability gate (SQuAD F1 >= {_num(gate.get('f1'))} and EM >= {_num(gate.get('em'))}): "
              f"{verdict}.", ""]
    return "\n".join(lines)
