"""`spec.data.mix`: other data replayed into the training set, to keep what the base model could do.

The way practitioners keep a model's original ability during a LoRA
fine-tune: a share of general instruction or reading-comprehension rows among
the task's rows. Each entry names a source, its share of the final training
set (or a count of rows) and how its rows are asked:

- `squad-jsonl` / `squad-json` rows are asked the way evaluate asks SQuAD
  (scoring/squad_data.PROMPT: the passage, the question), the first answer
  as the response;
- `contest-jsonl` / `alpaca-json` rows with the entry's template, or the
  run's (`spec.data.template`).

Rows are drawn without repeats while the source has enough (then every row,
again, in a new order), seeded by `spec.data.sample.seed` and the entry's
place in the list: the same spec draws the same rows.
"""
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence

from ..errors import SpecError
from ..scoring import squad_data
from . import loaders
from .sources import fetch, shown
from .templates import Template

SQUAD_FORMATS = squad_data.FORMATS
FORMATS = tuple(loaders.FORMATS) + SQUAD_FORMATS


@dataclass(frozen=True)
class MixRow:
    text: str          # what the leakage check compares (the question, with its passage)
    prompt: str
    response: str


@dataclass
class MixSource:
    index: int
    name: str
    uri: str
    path: Path
    rows: List[MixRow]

    @property
    def field(self) -> str:
        return f"spec.data.mix[{self.index}]"


def load(entry: Mapping[str, Any], index: int, data_path: str, downloads: Path,
         run_template: Template) -> MixSource:
    field = f"spec.data.mix[{index}]"
    source = entry.get("source") or {}
    fmt = source.get("format") or "squad-jsonl"
    if fmt not in FORMATS:
        raise SpecError(f"{field}.source.format", f"one of {', '.join(FORMATS)} (got {fmt!r})")
    path = fetch(source.get("uri", ""), data_path, downloads, field=f"{field}.source.uri",
                 sha256=source.get("sha256") or "")
    if fmt in SQUAD_FORMATS:
        examples = squad_data.load(path, fmt, field=f"{field}.source")
        rows = [MixRow(f"{e['context']}\n{e['question']}", squad_data.prompt(e), e["answers"][0]) for e in examples]
    else:
        template_cfg = entry.get("template") or {}
        template = (Template(template_cfg["name"], template_cfg.get("systemPrompt", "") or "")
                    if template_cfg.get("name") else run_template)
        loaded = loaders.load(path.read_bytes(), fmt, field=f"{field}.source", where=str(path))
        rows = []
        for question, input_text, answer in zip(loaded.instruction, loaded.input, loaded.output):
            prompt, response = template.render(question, input_text, answer)
            rows.append(MixRow(f"{question}\n{input_text}" if input_text else question, prompt, response))
    if not rows:
        raise SpecError(f"{field}.source.uri", f"a {fmt} file with at least one row ({path} has none)")
    return MixSource(index, entry.get("name") or f"mix{index}", shown(str(source.get("uri"))), path, rows)


def counts(entries: Sequence[Mapping[str, Any]], main_rows: int) -> List[int]:
    """Rows to draw per entry: `count`, or `share` of the final training set (main rows plus
    every mix entry's), so that shares 0.1 and 0.2 beside 700 main rows give 100 and 200."""
    shares = [float(e["share"]) for e in entries if e.get("share") is not None]
    total_share = sum(shares)
    if total_share >= 1:
        raise SpecError("spec.data.mix", f"shares that add up to less than 1 (they add up to {total_share:g})")
    counted = sum(int(e["count"]) for e in entries if e.get("count") is not None)
    whole = (main_rows + counted) / (1 - total_share)
    out = []
    for index, entry in enumerate(entries):
        if (entry.get("share") is None) == (entry.get("count") is None):
            raise SpecError(f"spec.data.mix[{index}]", "exactly one of share and count")
        out.append(int(entry["count"]) if entry.get("count") is not None else round(float(entry["share"]) * whole))
    return out


def draw(source: MixSource, count: int, seed: int) -> List[MixRow]:
    """`count` rows of the source, the same ones for the same seed."""
    rng = random.Random(f"{seed}:mix:{source.index}")
    rows = source.rows
    drawn: List[MixRow] = []
    while count - len(drawn) >= len(rows):
        order = list(range(len(rows)))
        rng.shuffle(order)
        drawn += [rows[i] for i in order]
    return drawn + [rows[i] for i in rng.sample(range(len(rows)), count - len(drawn))]


def summary(source: MixSource, drawn: int, kept: int) -> Dict[str, Any]:
    return {"name": source.name, "uri": source.uri, "available": len(source.rows), "drawn": drawn, "rows": kept}
