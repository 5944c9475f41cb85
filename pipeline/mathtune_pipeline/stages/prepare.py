"""`mathtune-pipeline prepare`: load -> dedupe -> classify -> sample -> chain of thought -> template.

Writes `<run-dir>/prepare/train.jsonl`, one row per line
`{"type": ..., "prompt": ..., "response": ...}` (prompt and response kept apart
so tokenize masks the labels exactly), and `manifest.json` with the counts of
every step, per type, and the input and config digests. A re-run with the same
source bytes and the same `spec.data` settings returns the recorded result
without redoing the work; a run whose data recipe another run on the same volume
already prepared links that output in (data/recipe_cache.py, `reused` in the result).

Python API: `prepare(spec, run_dir)` does the same and returns the result dict;
`prepare_rows(rows, spec.data)` is the in-memory part.
"""
import argparse
import contextlib
import gc
import hashlib
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from json.encoder import encode_basestring
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from mathtune_api import MathFinetuneSpec as Spec
from mathtune_api.spec_data import Data

from .. import __version__, disk
from ..artifacts import atomic_stage_dir, is_current, read_manifest, sha256_json, write_manifest
from ..errors import SpecError
from ..data import recipe_cache, types as T
from ..data.classify import Classifier, count_types
from ..data.cot import COMPUTABLE_TYPES, SEED000_STEP_TYPES, ChainOfThought
from ..data.dedupe import dedupe, first_by_fingerprint
from ..data.loaders import Rows, bad_line_numbers, load, load_files, source_files, split_lines
from ..data.parallel import SHARED, cpus, fork_map
from ..data.sample import sample
from ..data.scan import materialize, scan_lines
from ..data.sources import fetch, shown
from . import replay
from .prepare_settings import Settings, settings

STAGE = "prepare"
OUTPUT = "train.jsonl"
# Bumped when the output for the same input and config changes (part of the config digest).
FORMAT_VERSION = 1
SCAN_CHUNK = 20000       # rows per bulk JSON parse: a bad row costs a line-by-line re-read of this many
RENDER_CHUNK = 5000      # below this many chosen rows a second process costs more than it saves
# Settings under spec.data that tokenize reads, not prepare: changing them must not redo prepare.
_TOKENIZE_ONLY = ("seqLength", "seqLengthPercentile", "shards")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true", help="redo the stage even if its inputs and config did not change")


@dataclass
class Table:
    """The rows after dedupe and classification, their text fetched only when chosen."""
    kinds: List[str]
    fetch: Callable[[Sequence[int]], Tuple[List[str], List[str], List[str]]]   # -> instruction, input, output
    counts: Dict[str, Any]


@dataclass
class Prepared:
    """The output's JSON lines (in blocks) and what every step counted."""
    blocks: List[str] = field(default_factory=list)
    counts: Dict[str, Any] = field(default_factory=dict)


def _base_counts(read: int, bad: int, bad_examples, unwrapped: int) -> Dict[str, Any]:
    return {"read": read, "bad": bad, "badExamples": [{"line": n, "why": why} for n, why in bad_examples],
            "unwrapped": unwrapped}


def table_from_rows(rows: Rows, s: Settings, fmt: str) -> Table:
    """Small sources (alpaca JSON, MMLU CSV, tests): everything in memory, in this process."""
    counts = _base_counts(rows.read, rows.bad, rows.bad_examples, rows.unwrapped)
    counts["duplicates"] = rows.repeats_dropped + (dedupe(rows) if s.dedupe else 0)
    counts["deduped"] = len(rows)
    kinds = Classifier(s.rules, fallback_type=T.CHOICE if fmt == "mmlu-csv" else None).classify_all(rows.instruction)

    def fetch(indices):
        return ([rows.instruction[i] for i in indices], [rows.input[i] for i in indices],
                [rows.output[i] for i in indices])

    return Table(kinds, fetch, counts)


def _scan_task(bounds: Tuple[int, int]):
    shared = SHARED
    unique, classifier, codes, unwrap = shared["unique"], shared["classifier"], shared["codes"], shared["unwrap"]
    parts = [scan_lines(unique[a:min(a + SCAN_CHUNK, bounds[1])], classifier, codes, unwrap)
             for a in range(bounds[0], bounds[1], SCAN_CHUNK)]
    bad = {bounds[0] + (a - bounds[0]) + i: why
           for a, part in zip(range(bounds[0], bounds[1], SCAN_CHUNK), parts) for i, why in part[3].items()}
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]), bad, sum(p[4] for p in parts))


def table_from_contest(raw: bytes, s: Settings, processes: int) -> Table:
    """Contest JSON lines at 810k rows: repeats dropped as bytes, then parse, classify and
    fingerprint in forked workers (scan.py), dedupe on fingerprints, text parsed again
    only for the rows finally chosen."""
    lines = split_lines(raw, drop_repeats=s.dedupe)
    unique = lines.unique
    codes = {name: i for i, name in enumerate(s.known_types)}
    classifier = Classifier(s.rules)
    step = max(SCAN_CHUNK, -(-len(unique) // max(1, processes)))
    tasks = [(a, min(a + step, len(unique))) for a in range(0, len(unique), step)]
    parts = fork_map(_scan_task, tasks, processes,
                     {"unique": unique, "classifier": classifier, "codes": codes, "unwrap": lines.wrapped})
    empty = np.zeros(0, dtype=np.int64)
    type_codes = np.concatenate([p[0] for p in parts]) if parts else empty
    prints = np.concatenate([p[1] for p in parts]) if parts else empty
    valid = np.concatenate([p[2] for p in parts]) if parts else np.zeros(0, dtype=bool)
    bad_rows = Rows()
    bad_lines = {unique[i]: why for p in parts for i, why in p[3].items()}
    if bad_lines:
        bad_line_numbers(lines, bad_lines, bad_rows)

    def pairs_of(indices):
        problems, solutions = materialize([unique[i] for i in indices], lines.wrapped)
        return list(zip(problems, solutions))

    keep = first_by_fingerprint(prints, valid, pairs_of) if s.dedupe else np.flatnonzero(valid)
    counts = _base_counts(lines.read, bad_rows.bad, bad_rows.bad_examples, sum(p[4] for p in parts))
    counts["deduped"] = len(keep)
    counts["duplicates"] = lines.read - bad_rows.bad - len(keep)
    names = s.known_types
    kinds = [names[c] for c in type_codes[keep].tolist()]

    def fetch(indices):
        problems, solutions = materialize([unique[keep[i]] for i in indices], lines.wrapped)
        return problems, [""] * len(problems), solutions

    return Table(kinds, fetch, counts)


def _render_task(bounds: Tuple[int, int]):
    shared = SHARED
    chosen, kinds, s = shared["chosen"][bounds[0]:bounds[1]], shared["kinds"], shared["settings"]
    order = sorted(set(chosen))
    instructions, inputs, outputs = shared["fetch"](order)
    cot = ChainOfThought(s.decimals, s.step_types) if s.cot_enabled else None
    render, enc = s.template.render, encode_basestring
    # Each distinct row is solved and rendered once; upsampled repeats reuse its line.
    # status: 0 recomputed, 1 kept, 2 failed (the question did not parse: its own answer is kept).
    line_of: Dict[int, str] = {}
    status_of: Dict[int, int] = {}
    for i, question, input_text, answer in zip(order, instructions, inputs, outputs):
        kind = kinds[i]
        status = 1
        if cot is not None and kind in COMPUTABLE_TYPES:
            solved = cot.solve(kind, question)
            if solved is None:
                status = 2
            else:
                answer = solved
                status = 0
        prompt, response = render(question, input_text, answer)
        # One `%` per row with the C string encoder: json.dumps per dict is ~3x slower.
        line_of[i] = '{"type": %s, "prompt": %s, "response": %s}' % (enc(kind), enc(prompt), enc(response))
        status_of[i] = status
    per_status = [0, 0, 0]
    for i in chosen:
        per_status[status_of[i]] += 1
    tally = {"recomputed": per_status[0], "kept": per_status[1], "failed": per_status[2]}
    lines = list(map(line_of.__getitem__, chosen))
    return "\n".join(lines) + "\n" if lines else "", tally


def finish(table: Table, s: Settings, processes: int = 1,
           screen: Optional[Callable[[List[int], Callable], List[int]]] = None) -> Prepared:
    """Sample, then chain of thought and template over the chosen rows, in forked workers.
    `screen` (the leakage check) gets the sampled rows and returns those that stay."""
    counts = dict(table.counts)
    counts["classified"] = count_types(table.kinds)
    counts["other"] = counts["classified"].get(T.OTHER, 0)
    chosen, sampled = sample(table.kinds, s.sample)
    if screen is not None:
        screened = screen(chosen, table.fetch)
        if len(screened) != len(chosen):
            chosen, sampled = screened, dict(Counter(table.kinds[i] for i in screened))
    counts["sampled"] = len(chosen)
    counts["sampledByType"] = dict(sorted(sampled.items()))
    step = max(RENDER_CHUNK, -(-len(chosen) // max(1, processes)))
    tasks = [(a, min(a + step, len(chosen))) for a in range(0, len(chosen), step)]
    parts = fork_map(_render_task, tasks, processes,
                     {"chosen": chosen, "kinds": table.kinds, "settings": s, "fetch": table.fetch})
    tally = {"recomputed": 0, "kept": 0, "failed": 0}
    for _, part in parts:
        for key in tally:
            tally[key] += part[key]
    counts["chainOfThought"] = {"enabled": s.cot_enabled, "decimals": s.decimals,
                                "stepTypes": sorted(s.step_types if s.step_types is not None else SEED000_STEP_TYPES)
                                if s.cot_enabled else [], **tally}
    counts["template"] = s.template.name
    return Prepared([text for text, _ in parts], counts)


def prepare_rows(rows: Rows, data: Data, fmt: str = "contest-jsonl", processes: int = 1) -> Prepared:
    """Dedupe, classify, sample, chain of thought and template over loaded rows."""
    s = settings(data)
    return finish(table_from_rows(rows, s, fmt), s, processes)


def write_rows(prepared: Prepared, path: Path) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for block in prepared.blocks:
            fh.write(block)


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
                       "classified": c["classified"], "sampled": c["sampled"], "other": c["other"],
                       "trained": c.get("trained", c["sampled"])},
              "outputs": manifest["outputs"]}
    if c.get("mix"):
        result["mix"] = [{k: m[k] for k in ("name", "drawn", "rows")} for m in c["mix"]]
    if c.get("leakage"):
        result["leakage"] = c["leakage"]
    if skipped:
        result["skipped"] = True
    return result


def _input_digest(source_sha256: str, others: Mapping[str, Any]) -> str:
    """The main source's bytes, and the mix sources' and held-out sets' (the leakage check reads them)."""
    return sha256_json({"source": source_sha256, **others})


@contextlib.contextmanager
def _gc_paused():
    """The cyclic collector off while millions of rows are built: they hold no cycles,
    yet each allocation burst re-walks every live container (~0.3 s of 3 s at 810k rows).
    Forked workers inherit the setting. Restored afterwards, as it was."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _joined(files: List[Path]) -> bytes:
    """One file's bytes; several files' one after another, each ending its last line (the
    digest of a directory source, and a contest-jsonl directory's lines)."""
    if len(files) == 1:
        return files[0].read_bytes()
    blobs = [f.read_bytes() for f in files]
    return b"".join(b if not b or b.endswith(b"\n") else b + b"\n" for b in blobs)


def _hash_into(raw: bytes, digest: Dict[str, str]) -> None:
    digest["sha256"] = hashlib.sha256(raw).hexdigest()


def prepare(spec: Spec, run_dir: Path, force: bool = False, run_name: Optional[str] = None) -> Dict[str, Any]:
    with _gc_paused():
        return _prepare(spec, run_dir, force, run_name)


def _prepare(spec: Spec, run_dir: Path, force: bool, run_name: Optional[str]) -> Dict[str, Any]:
    data_config = spec.data
    source = data_config.source
    fmt = source.format
    max_bad = data_config.max_bad_rows
    s = settings(data_config)   # every bad field reported before any download or parse
    run_dir = Path(run_dir)
    data_path = spec.storage.data_path
    started = time.monotonic()
    path = fetch(source.uri, data_path, run_dir / "downloads", sha256=source.sha256, allow_dir=True)
    # A directory source: every file of the format in it, sorted (loaders.source_files).
    files = source_files(path, fmt, "spec.data.source.uri")
    # After the main source: a run whose data is missing says so first.
    screen = replay.Screen(spec, run_dir)
    mix_sources = replay.load_mix(spec, run_dir)
    ev, pr = spec.evaluation, spec.prediction
    # The held-out files' bytes and what picks the rows screened in them: runs sharing data screened the same rows.
    others = {"mix": replay.source_digests(mix_sources), "heldout": screen.digests,
              "heldoutRows": [ev.enabled, ev.max_samples, pr.enabled, pr.types, pr.max_samples]}
    raw = _joined(files)
    # Hash the source while it is parsed (while the tokenizer is, when the recipe cache needs the key first):
    # hashlib releases the GIL on big buffers.
    digest: Dict[str, str] = {}
    # The bytes are passed, not closed over: `del raw` below must not race the thread's first read.
    hasher = threading.Thread(target=_hash_into, args=(raw, digest))
    hasher.start()
    cfg_digest = config_digest(data_config.wire())

    def input_digest() -> str:
        hasher.join()
        return _input_digest(digest["sha256"], others)

    key = _cache_key(spec, run_dir, cfg_digest, input_digest)
    with recipe_cache.slot(spec.storage.data_path, key, STAGE, run_dir, run_name or run_dir.name, force) as cache:
        if cache.hit:
            return cache.reused(_result(cache.hit))
        stage_dir = run_dir / STAGE
        previous = None if force else read_manifest(stage_dir)
        # A skip is possible: know before doing the work.
        if previous and previous.get("configDigest") == cfg_digest and \
                is_current(stage_dir, input_digest(), cfg_digest):
            return cache.built(_result(previous, skipped=True))
        processes = cpus()
        if fmt == "contest-jsonl":
            table = table_from_contest(raw, s, processes)  # JSON lines: the files' lines, one after another
        elif len(files) == 1:
            table = table_from_rows(load(raw, fmt, where=shown(source.uri)), s, fmt)
        else:
            table = table_from_rows(load_files(files, fmt), s, fmt)  # CSV headers, JSON lists: file by file
        del raw
        bad = table.counts["bad"]
        if 0 <= max_bad < bad:
            where = ", ".join(str(b["line"]) for b in table.counts["badExamples"])
            first_why = table.counts["badExamples"][0]["why"] if table.counts["badExamples"] else ""
            raise SpecError(shown(source.uri), f"at most {max_bad} bad rows (spec.data.maxBadRows); found {bad}, "
                                                    f"first at lines {where} ({first_why})")
        prepared = finish(table, s, processes,
                          screen=lambda chosen, fetch_rows: replay.screen_main(screen, chosen, fetch_rows))
        if not prepared.counts["sampled"]:
            raise _empty(shown(source.uri), fmt, {**prepared.counts, "leakage": screen.counts})
        mixed, prepared.counts["mix"] = replay.mix_rows(spec, mix_sources, prepared.counts["sampled"], screen)
        if mixed:
            prepared.blocks.append("".join(json.dumps({"type": kind, "prompt": prompt, "response": response},
                                                      ensure_ascii=False) + "\n" for kind, prompt, response in mixed))
        prepared.counts["trained"] = prepared.counts["sampled"] + len(mixed)
        prepared.counts["leakage"] = screen.counts
        with atomic_stage_dir(run_dir, STAGE) as tmp:
            write_rows(prepared, tmp / OUTPUT)
            counts = prepared.counts
            counts["seconds"] = round(time.monotonic() - started, 3)
            manifest = write_manifest(
                tmp, stage=STAGE, input_digest=input_digest(), config_digest=cfg_digest,
                outputs={"rows": f"{STAGE}/{OUTPUT}"}, counts=counts,
                extra={"source": {"uri": shown(source.uri), "format": fmt, "sha256": digest["sha256"]},
                       "pipelineVersion": __version__})
        return cache.built(_result(manifest))


def _cache_key(spec: Spec, run_dir: Path, cfg_digest: str, input_digest: Callable[[], str]) -> Optional[str]:
    """The recipe cache's key (data/recipe_cache.py), or None when the run names no
    tokenizer this stage can read: tokenize's part of the key is the tokenizer's bytes,
    and tokenize itself says what is wrong with it. Waits for the source's hash."""
    if not spec.model.tokenizer.uri:
        return None
    # tokenize imports names of this module: imported when called, the imports stay one-way at load.
    from .tokenize import recipe

    try:
        tokenize_part = recipe(spec, run_dir)[1]
    except (SpecError, OSError):
        return None
    return recipe_cache.recipe_key({"configDigest": cfg_digest, "inputDigest": input_digest()}, tokenize_part)


def _empty(uri: str, fmt: str, counts: Mapping[str, Any]) -> SpecError:
    """Why no row is left to train on, naming the step that emptied the data; the
    previous output stays (training on nothing would fail much later, less clearly)."""
    read, bad = counts.get("read", 0), counts.get("bad", 0)
    if not read:
        return SpecError(uri, f"rows in the {fmt} format (the file holds none)")
    if bad >= read:
        examples = counts.get("badExamples") or []
        first = f", first at line {examples[0]['line']} ({examples[0]['why']})" if examples else ""
        return SpecError(uri, f"rows in the {fmt} format (spec.data.source.format): all {read} rows are bad{first}")
    dropped = (counts.get("leakage") or {}).get("dropped", 0)
    if dropped:
        against = " and ".join(sorted((counts["leakage"].get("against") or {})))
        return SpecError(uri, f"at least one row to train on that {against} will not score: the leakage check "
                              f"dropped all {dropped} sampled rows (spec.data.leakage: warn keeps them, for a run "
                              f"that means to train on its evaluation rows)")
    return SpecError(uri, f"at least one row to train on: spec.data.sample chose none of the "
                          f"{counts.get('deduped', read - bad)} rows left after dedupe")


def run(args: argparse.Namespace, spec: Spec, metadata: Dict[str, Any]) -> Dict[str, Any]:
    result = prepare(spec, Path(args.run_dir), force=args.force, run_name=metadata.get("name"))
    result["disk"] = disk.outlook(spec, result["rows"]["trained"], Path(args.run_dir))
    return result
