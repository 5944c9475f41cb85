"""What prepare does to keep the original ability and trust the scores: the mix rows
(`spec.data.mix`) and the leakage check (`spec.data.leakage`).

The check compares every training row, the main source's after sampling and
each mix source's after drawing, with the rows evaluate and predict will
score (data/leakage.py). `drop` (the default) removes the rows found, `fail`
stops prepare naming how many rows of which source, `warn` keeps them; the
counts are in prepare's result either way (status shows them, and the
operator posts an Event when any was found).
"""
import hashlib
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

from mathtune_api import MathFinetuneSpec as Spec

from ..data import leakage, mix
from ..data.classify import Classifier, parse_rules
from ..data.heldout import load_heldout
from ..data.sources import fetch
from ..data.templates import Template
from ..errors import SpecError
from ..scoring import squad_data

MAIN = "spec.data.source"


class Screen:
    """The held-out rows of a run, and what the check found in its training rows."""

    def __init__(self, spec: Spec, run_dir: Path):
        self.mode = spec.data.leakage
        self.sets: List[leakage.Heldout] = []
        self.digests: List[str] = []
        self.counts: Dict[str, Any] = {"mode": self.mode, "exact": 0, "near": 0, "dropped": 0}
        evaluation, prediction = spec.evaluation, spec.prediction
        data_path = spec.storage.data_path
        # A held-out file prepare cannot read yet is named in the counts (`unchecked`): the stage
        # that scores it reads it again and fails on it, so no score is reported unchecked.
        if evaluation.enabled and evaluation.dataset.uri:
            field = "spec.evaluation.dataset"
            try:
                path = fetch(evaluation.dataset.uri, data_path, run_dir / "downloads", field=f"{field}.uri")
                examples = squad_data.load(path, evaluation.dataset.format, evaluation.max_samples)
                self._add(field, [f"{e['context']}\n{e['question']}" for e in examples], path)
            except SpecError as exc:
                self.counts.setdefault("unchecked", {})[field] = str(exc)[:300]
        if prediction.enabled and prediction.dataset.uri and prediction.dataset.format != "mmlu-csv":
            field = "spec.prediction.dataset"
            classify = Classifier(parse_rules([r.wire() for r in spec.data.classify.extra_rules]))
            try:
                path, questions, inputs, _ = load_heldout(spec, run_dir, classify)
                self._add(field, [f"{q}\n{i}" if i else q for q, i in zip(questions, inputs)], path)
            except SpecError as exc:
                self.counts.setdefault("unchecked", {})[field] = str(exc)[:300]

    def _add(self, name: str, texts: Sequence[str], path: Path) -> None:
        self.sets.append(leakage.Heldout.of(name, texts))
        self.digests.append(hashlib.sha256(path.read_bytes()).hexdigest())

    def keep(self, source: str, texts: Sequence[str]) -> List[int]:
        """Which of a source's training rows to keep; raises on `fail` when any leaked."""
        found = leakage.find(texts, self.sets) if self.sets else []
        if not found:
            return list(range(len(texts)))
        leakage.tally(found, source, self.counts)
        exact = sum(f.kind == "exact" for f in found)
        against = sorted({f.against for f in found})
        if self.mode == "fail":
            raise SpecError(source, f"no row that {' or '.join(against)} will score (spec.data.leakage: fail): "
                                    f"{len(found)} of its {len(texts)} training rows are there ({exact} exact, "
                                    f"{len(found) - exact} near-duplicates), the first at row {found[0].row}")
        if self.mode == "warn":
            return list(range(len(texts)))
        self.counts["dropped"] += len(found)
        leaked = {f.row for f in found}
        return [i for i in range(len(texts)) if i not in leaked]


def screen_main(screen: Screen, chosen: List[int], fetch_rows) -> List[int]:
    """The main source's sampled rows (indices into its table, repeats for upsampling) that stay."""
    if not screen.sets:
        return chosen   # nothing held out to compare with: no row's text is fetched
    order = sorted(set(chosen))
    instructions, inputs, _ = fetch_rows(order)
    texts = [f"{q}\n{i}" if i else q for q, i in zip(instructions, inputs)]
    kept = {order[k] for k in screen.keep(MAIN, texts)}
    return [i for i in chosen if i in kept]


def load_mix(spec: Spec, run_dir: Path) -> List[mix.MixSource]:
    data = spec.data
    template = Template(data.template.name, data.template.system_prompt)
    return [mix.load(entry.wire(), index, spec.storage.data_path, run_dir / "downloads", template)
            for index, entry in enumerate(data.mix)]


def mix_rows(spec: Spec, sources: Sequence[mix.MixSource], main_rows: int,
             screen: Screen) -> Tuple[List[Tuple[str, str, str]], List[Dict[str, Any]]]:
    """(type, prompt, response) of every mix row kept, and a summary per source."""
    entries = [entry.wire() for entry in spec.data.mix]
    seed = spec.data.sample.seed
    rows: List[Tuple[str, str, str]] = []
    summaries = []
    for source, count in zip(sources, mix.counts(entries, main_rows)):
        drawn = mix.draw(source, count, seed)
        kept = [drawn[i] for i in screen.keep(source.field, [r.text for r in drawn])]
        rows += [(source.name, r.prompt, r.response) for r in kept]
        summaries.append(mix.summary(source, len(drawn), len(kept)))
    return rows, summaries


def source_digests(sources: Sequence[mix.MixSource]) -> List[str]:
    return [hashlib.sha256(s.path.read_bytes()).hexdigest() for s in sources]
