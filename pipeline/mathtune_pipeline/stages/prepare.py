"""`mathtune-pipeline prepare`: load -> dedupe -> classify -> sample -> chain of thought -> template.

Writes `<run-dir>/prepare/train.jsonl`, one row per line
`{"type": ..., "prompt": ..., "response": ...}` (prompt and response kept apart
so tokenize masks the labels exactly), and `manifest.json` with the counts of
every step, per type, and the input and config digests. A re-run with the same
source bytes and the same `spec.data` settings returns the recorded result
without redoing the work.

Python API: `prepare(spec, run_dir)` does the same and returns the result dict;
`prepare_rows(rows, data_config)` is the in-memory part.
"""
import argparse
import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from .. import __version__
from ..artifacts import atomic_stage_dir, is_current, read_manifest, sha256_json, write_manifest
from ..errors import SpecError
from ..data import types as T
from ..data.classify import Classifier, count_types, parse_rules
from ..data.cot import COMPUTABLE_TYPES, SEED000_STEP_TYPES, ChainOfThought
from ..data.dedupe import dedupe
from ..data.loaders import FORMATS, Rows, load
from ..data.sample import sample
from ..data.sources import fetch
from ..data.templates import Template

STAGE = "prepare"
OUTPUT = "train.jsonl"
# Bumped when the output for the same input and config changes (part of the config digest).
FORMAT_VERSION = 1
# Settings under spec.data that tokenize reads, not prepare: changing them must not redo prepare.
_TOKENIZE_ONLY = ("seqLength", "seqLengthPercentile", "shards")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true", help="redo the stage even if its inputs and config did not change")


@dataclass
class Prepared:
    """The rows to write and what every step counted."""
    types: List[str] = field(default_factory=list)
    prompts: List[str] = field(default_factory=list)
    responses: List[str] = field(default_factory=list)
    counts: Dict[str, Any] = field(default_factory=dict)


def _int(value: Any, where: str, low: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise SpecError(where, f"an integer >= {low}")
    return value


def _cot_settings(config: Mapping[str, Any], known_types: set) -> Tuple[bool, int, Optional[set]]:
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
    unknown = sorted(set(chosen) - known_types)
    if unknown:
        raise SpecError("spec.data.chainOfThought.types", f"known types ({', '.join(sorted(known_types))}); got {unknown[0]!r}")
    return enabled, decimals, (set(chosen) if chosen else None)


def prepare_rows(rows: Rows, config: Mapping[str, Any], fmt: str = "contest-jsonl") -> Prepared:
    """Dedupe, classify, sample, chain of thought and template over loaded rows."""
    counts: Dict[str, Any] = {"read": rows.read, "bad": rows.bad,
                              "badExamples": [{"line": n, "why": why} for n, why in rows.bad_examples],
                              "unwrapped": rows.unwrapped}
    rules = parse_rules((config.get("classify") or {}).get("extraRules"))
    known = set(T.CONTEST_TYPES) | {r.type for r in rules} | {T.CHOICE, T.OTHER}
    enabled, decimals, step_types = _cot_settings(config, known)
    template_cfg = config.get("template") or {}
    template = Template(template_cfg.get("name", "alpaca"), template_cfg.get("systemPrompt", "") or "")

    do_dedupe = config.get("dedupe", True)
    if not isinstance(do_dedupe, bool):
        raise SpecError("spec.data.dedupe", "true or false")
    duplicates = rows.repeats_dropped + (dedupe(rows) if do_dedupe else 0)
    counts["duplicates"] = duplicates
    counts["deduped"] = len(rows)

    classifier = Classifier(rules, fallback_type=T.CHOICE if fmt == "mmlu-csv" else None)
    kinds = classifier.classify_all(rows.instruction)
    counts["classified"] = count_types(kinds)
    counts["other"] = counts["classified"].get(T.OTHER, 0)

    chosen, sampled = sample(kinds, config.get("sample") or {})
    counts["sampled"] = len(chosen)
    counts["sampledByType"] = dict(sorted(sampled.items()))

    cot = ChainOfThought(decimals, step_types) if enabled else None
    solved: Dict[int, Optional[str]] = {}
    cot_counts = {"recomputed": 0, "kept": 0, "failed": 0}
    out = Prepared(counts=counts)
    render = template.render
    for i in chosen:
        kind, question, input_text, answer = kinds[i], rows.instruction[i], rows.input[i], rows.output[i]
        if cot is not None and kind in COMPUTABLE_TYPES:
            if i not in solved:
                solved[i] = cot.solve(kind, question)
            new = solved[i]
            if new is None:
                cot_counts["failed"] += 1   # the question did not parse: its own answer is kept
            else:
                answer = new
                cot_counts["recomputed"] += 1
        else:
            cot_counts["kept"] += 1
        prompt, response = render(question, input_text, answer)
        out.types.append(kind)
        out.prompts.append(prompt)
        out.responses.append(response)
    counts["chainOfThought"] = {"enabled": enabled, "decimals": decimals,
                                "stepTypes": sorted(step_types if step_types is not None else SEED000_STEP_TYPES)
                                if enabled else [], **cot_counts}
    counts["template"] = template.name
    return out


def write_rows(prepared: Prepared, path: Path) -> None:
    # One `%` per row with the C string encoder: json.dumps per dict is ~3x slower at 100k rows.
    enc = encode_basestring
    with open(path, "w", encoding="utf-8") as fh:
        batch = []
        for kind, prompt, response in zip(prepared.types, prepared.prompts, prepared.responses):
            batch.append('{"type": %s, "prompt": %s, "response": %s}' % (enc(kind), enc(prompt), enc(response)))
            if len(batch) == 20000:
                fh.write("\n".join(batch) + "\n")
                batch = []
        if batch:
            fh.write("\n".join(batch) + "\n")


def read_rows(path: Path) -> List[Dict[str, str]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def config_digest(data_config: Mapping[str, Any]) -> str:
    relevant = {k: v for k, v in data_config.items() if k not in _TOKENIZE_ONLY}
    relevant["source"] = {k: v for k, v in (data_config.get("source") or {}).items() if k != "uri"}
    return sha256_json({"stage": STAGE, "formatVersion": FORMAT_VERSION, "data": relevant})


def _result(manifest: Mapping[str, Any], skipped: bool = False) -> Dict[str, Any]:
    c = manifest["counts"]
    result = {"rows": {"read": c["read"], "bad": c["bad"], "deduped": c["deduped"], "duplicates": c["duplicates"],
                       "classified": c["classified"], "sampled": c["sampled"], "other": c["other"]},
              "outputs": manifest["outputs"]}
    if skipped:
        result["skipped"] = True
    return result


def _input_digest(source_sha256: str) -> str:
    return sha256_json({"source": source_sha256})


def prepare(spec: Mapping[str, Any], run_dir: Path, force: bool = False) -> Dict[str, Any]:
    data_config = spec.get("data") or {}
    source = data_config.get("source") or {}
    fmt = source.get("format", "contest-jsonl")
    if fmt not in FORMATS:
        raise SpecError("spec.data.source.format", f"one of {', '.join(FORMATS)} (got {fmt!r})")
    max_bad = data_config.get("maxBadRows", -1)
    if not isinstance(max_bad, int) or isinstance(max_bad, bool) or max_bad < -1:
        raise SpecError("spec.data.maxBadRows", "-1 (never fail) or a number of rows >= 0")
    run_dir = Path(run_dir)
    data_path = (spec.get("storage") or {}).get("dataPath", "/data")
    started = time.monotonic()
    path = fetch(source.get("uri", ""), data_path, run_dir / "downloads", sha256=source.get("sha256") or "")
    raw = path.read_bytes()
    # Hash the source while it is parsed: hashlib releases the GIL on big buffers.
    digest: Dict[str, str] = {}
    hasher = threading.Thread(target=lambda: digest.__setitem__("sha256", hashlib.sha256(raw).hexdigest()))
    hasher.start()
    cfg_digest = config_digest(data_config)
    stage_dir = run_dir / STAGE
    previous = None if force else read_manifest(stage_dir)
    if previous and previous.get("configDigest") == cfg_digest:
        hasher.join()  # a skip is possible: know before doing the work
        if is_current(stage_dir, _input_digest(digest["sha256"]), cfg_digest):
            return _result(previous, skipped=True)
    rows = load(raw, fmt, drop_repeats=data_config.get("dedupe", True) is True)
    del raw
    hasher.join()
    input_digest = _input_digest(digest["sha256"])
    if 0 <= max_bad < rows.bad:
        where = ", ".join(str(n) for n, _ in rows.bad_examples)
        first_why = rows.bad_examples[0][1] if rows.bad_examples else ""
        raise SpecError(str(source.get("uri")), f"at most {max_bad} bad rows (spec.data.maxBadRows); found {rows.bad}, "
                                                f"first at lines {where} ({first_why})")
    prepared = prepare_rows(rows, data_config, fmt)
    with atomic_stage_dir(run_dir, STAGE) as tmp:
        write_rows(prepared, tmp / OUTPUT)
        counts = prepared.counts
        counts["seconds"] = round(time.monotonic() - started, 3)
        manifest = write_manifest(
            tmp, stage=STAGE, input_digest=input_digest, config_digest=cfg_digest,
            outputs={"rows": f"{STAGE}/{OUTPUT}"}, counts=counts,
            extra={"source": {"uri": source.get("uri"), "format": fmt, "sha256": digest["sha256"]},
                   "pipelineVersion": __version__})
    return _result(manifest)


def run(args: argparse.Namespace, spec: Dict[str, Any], metadata: Dict[str, Any]) -> Dict[str, Any]:
    return prepare(spec, Path(args.run_dir), force=args.force)
