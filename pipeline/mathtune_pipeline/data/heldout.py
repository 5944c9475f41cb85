"""The rows predict scores (`spec.prediction.dataset`, its `types`, at most `maxSamples`):
read by predict, and by prepare's leakage check, which must see exactly those rows."""
from pathlib import Path

from mathtune_api import MathFinetuneSpec as Spec

from ..errors import SpecError
from . import loaders
from .classify import Classifier
from .sources import fetch


def load_heldout(spec: Spec, run_dir: Path, classify=None):
    """The held-out file and its (questions, inputs, references): the rows of `prediction.types`
    (all when empty), then at most `maxSamples` of them."""
    pr = spec.prediction
    path = fetch(pr.dataset.uri, spec.storage.data_path, run_dir / "downloads", field="spec.prediction.dataset.uri")
    fmt = pr.dataset.format
    rows = loaders.load(path.read_bytes(), fmt, drop_repeats=False, field="spec.prediction.dataset", where=str(path))
    # Every row is scored: a row skipped would change the accuracy's denominator unnoticed.
    if rows.bad:
        line, why = rows.bad_examples[0]
        raise SpecError("spec.prediction.dataset.uri",
                        f"a {fmt} file whose every row is a question with its answer "
                        f"({path}: {rows.bad} of {rows.read} rows bad, the first at line {line}: {why})")
    if len(rows) == 0:
        raise SpecError("spec.prediction.dataset.uri", f"a {fmt} file with at least one question ({path} has none)")
    keep = list(range(len(rows)))
    wanted = set(pr.types)
    if wanted:
        kinds = (classify or Classifier()).classify_all(rows.instruction)
        keep = [i for i in keep if kinds[i] in wanted]
        if not keep:
            raise SpecError("spec.prediction.types", f"types with at least one row in {path} "
                                                     f"(none of {', '.join(sorted(wanted))})")
    keep = keep[:pr.max_samples or len(keep)]
    return (path, [rows.instruction[i] for i in keep], [rows.input[i] for i in keep],
            [rows.output[i] for i in keep])
