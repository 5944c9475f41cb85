"""prepare's settings: spec.data validated once, every bad field reported
before any download or parse (the classify rules, chain of thought, template,
dedupe and sample blocks). Pure: no I/O."""
from dataclasses import dataclass
from typing import Any, List, Mapping, Optional

from ..data import types as T
from ..data.classify import parse_rules
from ..data.sample import validate as validate_sample
from ..data.templates import Template
from ..errors import SpecError


@dataclass
class Settings:
    """spec.data, validated once: every bad field is reported before any work."""
    rules: list
    known_types: List[str]
    cot_enabled: bool
    decimals: int
    step_types: Optional[set]
    template: Template
    dedupe: bool
    sample: Mapping[str, Any]


def _int(value: Any, where: str, low: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise SpecError(where, f"an integer >= {low}")
    return value


def settings(config: Mapping[str, Any]) -> Settings:
    rules = parse_rules((config.get("classify") or {}).get("extraRules"))
    known = list(T.CONTEST_TYPES) + [T.OTHER, T.CHOICE] + sorted({r.type for r in rules} - set(T.CONTEST_TYPES))
    cot = config.get("chainOfThought") or {}
    enabled = cot.get("enabled", False)
    if not isinstance(enabled, bool):
        raise SpecError("spec.data.chainOfThought.enabled", "true or false")
    decimals = _int(cot.get("decimals", 2), "spec.data.chainOfThought.decimals", 0)
    if decimals > 12:
        raise SpecError("spec.data.chainOfThought.decimals", "at most 12")
    chosen = cot.get("types") or []
    if not isinstance(chosen, list) or not all(isinstance(t, str) for t in chosen):
        raise SpecError("spec.data.chainOfThought.types", "a list of type names")
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        raise SpecError("spec.data.chainOfThought.types", f"known types ({', '.join(sorted(known))}); got {unknown[0]!r}")
    template_cfg = config.get("template") or {}
    template = Template(template_cfg.get("name", "alpaca"), template_cfg.get("systemPrompt", "") or "")
    do_dedupe = config.get("dedupe", True)
    if not isinstance(do_dedupe, bool):
        raise SpecError("spec.data.dedupe", "true or false")
    sample_cfg = config.get("sample") or {}
    validate_sample(sample_cfg)
    return Settings(rules, known, enabled, decimals, set(chosen) if chosen else None, template, do_dedupe, sample_cfg)
