"""prepare's settings from spec.data, every bad field reported before any
download or parse (the classify rules, chain of thought, template, dedupe and
sample blocks). Pure: no I/O."""
from dataclasses import dataclass
from typing import Any, List, Mapping, Optional

from mathtune_api.spec_data import Data

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


def settings(data: Data) -> Settings:
    """The model has checked every field's type and bounds; what is left needs
    the data side's vocabulary (known types) or its sampling rules."""
    rules = parse_rules([r.wire() for r in data.classify.extra_rules])
    known = list(T.CONTEST_TYPES) + [T.OTHER, T.CHOICE] + sorted({r.type for r in rules} - set(T.CONTEST_TYPES))
    cot = data.chain_of_thought
    unknown = sorted(set(cot.types) - set(known))
    if unknown:
        raise SpecError("spec.data.chainOfThought.types", f"known types ({', '.join(sorted(known))}); got {unknown[0]!r}")
    template = Template(data.template.name, data.template.system_prompt)
    sample_cfg = data.sample.wire()
    validate_sample(sample_cfg)
    return Settings(rules, known, cot.enabled, cot.decimals, set(cot.types) or None, template, data.dedupe,
                    sample_cfg)
