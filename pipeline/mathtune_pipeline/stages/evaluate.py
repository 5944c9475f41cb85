"""evaluate: SQuAD F1/EM ("original capability") of the base model and of each merged epoch.

Each candidate answers every question (greedy, `evaluation.maxNewTokens`) in
the contests' prompt; answers are scored with the contest metric
(scoring/squad.py). The base model's scores are computed once per base
weights and question set and kept in `<dataPath>/runs/.cache/`, so later runs
(and re-runs) reuse them; `evaluation.baseScores` skips even that. Writes
`<run-dir>/evaluate/{scores.json, <candidate>.jsonl}` (every answer, for
reading by hand).
"""
import json
from pathlib import Path
from typing import Any, Dict, List

from mathtune_api import MathFinetuneSpec as Spec

from ..artifacts import atomic_stage_dir, sha256_file, write_manifest, sha256_json
from ..data.sources import fetch
from ..errors import SpecError
from ..mindformers import candidates as C
from ..mindformers import model as mf_model
from ..result import publish_progress
from ..scoring import squad, squad_data

STAGE = "evaluate"
FIELD = "spec.evaluation.dataset.uri"


def add_arguments(parser) -> None:
    pass


def _scores(generator: C.Generator, candidate: C.Candidate, examples: List[Dict], max_new: int,
            index: int, total: int, out: Path, rule: str) -> Dict[str, float]:
    prompts = [squad_data.prompt(e) for e in examples]
    gold = [squad.gold_answers(e["answers"], rule) for e in examples]

    def progress(done: int, n: int) -> None:
        publish_progress(stage=STAGE, model=candidate.label, epoch=index, epochs=total, step=done, steps=n)

    answers = generator.generate(candidate, prompts, max_new, progress, field=FIELD)
    result = squad.score(answers, gold)
    with open(out / f"{candidate.key}.jsonl", "w", encoding="utf-8") as fh:
        for example, answer, scored_against in zip(examples, answers, gold):
            f1, em = squad.example_scores(answer, scored_against)
            fh.write(json.dumps({"question": example["question"], "answers": example["answers"],
                                 "prediction": answer, "f1": 100 * f1, "em": 100 * em}, ensure_ascii=False) + "\n")
    print(f"evaluate: {candidate.label}: F1 {result['f1']:.2f}, EM {result['em']:.2f} over {result['count']}",
          flush=True)
    return {"f1": result["f1"], "em": result["em"]}


def _given_base(spec: Spec):
    given = spec.evaluation.base_scores
    if given.f1 is None and given.em is None:
        return None
    if given.f1 is None or given.em is None:
        raise SpecError("spec.evaluation.baseScores", "{f1, em} numbers, or empty")
    return {"f1": float(given.f1), "em": float(given.em)}


def run(args, spec: Spec, metadata: Dict[str, Any]) -> Dict[str, Any]:
    run_dir = Path(args.run_dir)
    mf_model.use_output_dir(run_dir / ".mindformers" / STAGE)
    ev = spec.evaluation
    if not ev.enabled:
        return {"skipped": True}
    data_path = fetch(ev.dataset.uri, spec.storage.data_path, run_dir / "downloads",
                      field="spec.evaluation.dataset.uri")
    examples = squad_data.load(data_path, ev.dataset.format, ev.max_samples)
    epochs = C.epochs_merged(run_dir, list(ev.epochs))
    generator = C.Generator(spec, run_dir)
    max_new = ev.max_new_tokens
    generator.window([squad_data.prompt(e) for e in examples], max_new, FIELD)  # a prompt too long: before any model

    with atomic_stage_dir(run_dir, STAGE) as out:
        base = _given_base(spec)
        base_source = "spec"
        if base is None:
            candidate = C.base_candidate(spec, run_dir)
            key = C.base_cache_key(candidate, f"squad-{ev.answer_rule}", sha256_file(data_path),
                                   ev.max_samples, max_new, squad_data.PROMPT, sha256_file(generator.tokenizer_path),
                                   generator.config["model"])
            cached = C.cache_dir(run_dir) / "base-scores" / f"{key}.json"
            if cached.is_file():
                base, base_source = json.loads(cached.read_text()), "cache"
                print(f"evaluate: base model scores reused from {cached}", flush=True)
            else:
                base, base_source = _scores(generator, candidate, examples, max_new, 0, len(epochs), out,
                                           ev.answer_rule), "computed"
                cached.parent.mkdir(parents=True, exist_ok=True)
                tmp = cached.with_suffix(".tmp")
                tmp.write_text(json.dumps(base))
                tmp.replace(cached)
        scores = {c.key: _scores(generator, c, examples, max_new, i, len(epochs), out, ev.answer_rule)
                  for i, c in enumerate(epochs, 1)}
        result = {"base": base, "baseSource": base_source, "epochs": scores, "count": len(examples)}
        (out / "scores.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
        write_manifest(out, stage=STAGE, input_digest=sha256_json({"data": sha256_file(data_path),
                                                                    "epochs": [str(c.checkpoint) for c in epochs]}),
                       config_digest=sha256_json(ev), outputs={"scores": f"{STAGE}/scores.json"},
                       counts={"examples": len(examples), "models": len(epochs) + (base_source == "computed")},
                       extra={"result": result})
    return result
