"""predict: math accuracy (or multiple-choice accuracy) on the held-out set, overall and per type.

Every candidate (the base model and each merged epoch) answers each held-out
question (those of `prediction.types` when given) asked with the run's own prompt template (greedy,
`prediction.maxNewTokens`). Math answers are read by scoring/reader.py (the
answer the output commits to, as a careful grader reads it) and compared by
scoring/answers.py (tolerance `prediction.tolerance` absolute; fractions for
simplify); the contest's rule (the last number of the output) is scored
beside it, for comparison with the seeds' figures. Per problem type as the data side classifies them (the spec's
extra rules first). MMLU/CMMLU rows (`mmlu-csv`) are scored by the option
letter. Writes `<run-dir>/predict/<candidate>/predictions.txt` in MindFormers'
predict output form (what the contest scripts read) and `scores.json`.
"""
import json
from pathlib import Path
from typing import Any, Dict, List

from mathtune_api import MathFinetuneSpec as Spec

from ..artifacts import atomic_stage_dir, sha256_file, sha256_json, write_manifest
from ..data.classify import Classifier, parse_rules
from ..data.heldout import load_heldout
from ..data.templates import Template
from ..mindformers import candidates as C
from ..mindformers import model as mf_model
from ..result import publish_progress
from ..scoring import choice, math_accuracy

STAGE = "predict"
CHOICE_TYPE = "choice"
FIELD = "spec.prediction.dataset.uri"


def add_arguments(parser) -> None:
    pass


def score(kind: str, questions: List[str], references: List[str], texts: List[str],
          classify, tolerance: float) -> Dict[str, Any]:
    if kind == "choice":
        picked = [choice.extract_choice(t) for t in texts]
        acc = choice.accuracy(picked, references)
        return {"accuracy": acc, "count": len(texts), "correct": round(acc * len(texts)),
                "perType": {CHOICE_TYPE: {"accuracy": acc, "count": len(texts)}}, "misses": []}
    return math_accuracy.score(questions, references, texts, classify=classify, tolerance=tolerance)


def run(args, spec: Spec, metadata: Dict[str, Any]) -> Dict[str, Any]:
    run_dir = Path(args.run_dir)
    mf_model.use_output_dir(run_dir / ".mindformers" / STAGE)
    pr = spec.prediction
    if not pr.enabled:
        return {"skipped": True}
    tolerance = pr.tolerance
    classify = Classifier(parse_rules([r.wire() for r in spec.data.classify.extra_rules]))
    data_path, questions, inputs, references = load_heldout(spec, run_dir, classify)
    kind = "choice" if pr.dataset.format == "mmlu-csv" else "math"
    template = Template(spec.data.template.name, spec.data.template.system_prompt)
    prompts = [template.render(q, i, "")[0] for q, i in zip(questions, inputs)]
    epochs = C.epochs_merged(run_dir, list(spec.evaluation.epochs))
    generator = C.Generator(spec, run_dir)
    max_new = pr.max_new_tokens
    generator.window(prompts, max_new, FIELD)  # a prompt too long: bad input before any model runs
    models = [C.base_candidate(spec, run_dir)] + epochs

    with atomic_stage_dir(run_dir, STAGE) as out:
        full: Dict[str, Any] = {}
        for index, candidate in enumerate(models):
            cached = None
            if candidate.key == "base":
                key = C.base_cache_key(candidate, "predict", sha256_file(data_path), pr.max_samples,
                                       sorted(pr.types), max_new,
                                       prompts[:1], sha256_file(generator.tokenizer_path), generator.config["model"])
                cached = C.cache_dir(run_dir) / "base-predictions" / f"{key}.json"
            if cached is not None and cached.is_file():
                texts = json.loads(cached.read_text(encoding="utf-8"))
                print(f"predict: base model answers reused from {cached}", flush=True)
            else:
                def progress(done: int, n: int, label=candidate.label, i=index) -> None:
                    publish_progress(stage=STAGE, model=label, epoch=i, epochs=len(epochs), step=done, steps=n)

                texts = generator.generate(candidate, prompts, max_new, progress, field=FIELD)
                if cached is not None:
                    cached.parent.mkdir(parents=True, exist_ok=True)
                    cached.with_suffix(".tmp").write_text(json.dumps(texts, ensure_ascii=False), encoding="utf-8")
                    cached.with_suffix(".tmp").replace(cached)
            (out / candidate.key).mkdir()
            # MindFormers' predict output form: the prompt echoed, then the answer.
            (out / candidate.key / "predictions.txt").write_text(
                repr([{"text_generation_text": [p + t]} for p, t in zip(prompts, texts)]), encoding="utf-8")
            full[candidate.key] = score(kind, questions, references, texts, classify, tolerance)
            print(f"predict: {candidate.label}: accuracy {full[candidate.key]['accuracy']:.3f} "
                  f"({full[candidate.key]['correct']}/{full[candidate.key]['count']})", flush=True)
        (out / "scores.json").write_text(json.dumps(full, indent=2, ensure_ascii=False), encoding="utf-8")
        result = {"kind": kind, "count": len(questions), "tolerance": tolerance,
                  "base": _brief(full["base"]), "epochs": {c.key: _brief(full[c.key]) for c in epochs}}
        write_manifest(out, stage=STAGE, input_digest=sha256_json({"data": sha256_file(data_path),
                                                                    "epochs": [str(c.checkpoint) for c in epochs]}),
                       config_digest=sha256_json(pr), outputs={"scores": f"{STAGE}/scores.json"},
                       counts={"questions": len(questions), "models": len(models)}, extra={"result": result})
    return result


def _brief(scored: Dict[str, Any]) -> Dict[str, Any]:
    """What the result JSON carries (it must stay small): accuracies, rounded;
    under the contest's rule and against the truth overall only (per type:
    scores.json)."""
    brief = {"accuracy": round(scored["accuracy"], 4),
             "perType": {k: round(v["accuracy"], 4) for k, v in scored["perType"].items()}}
    for name, key in (("contestRuleAccuracy", "contestRule"), ("truthAccuracy", "truth")):
        figure = (scored.get(key) or {}).get("accuracy")
        if figure is not None:
            brief[name] = round(figure, 4)
    return brief
