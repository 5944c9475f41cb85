"""`mathtune-pipeline tokenize`: prepared rows -> MindRecord shards in MindFormers' qa schema.

Reads `<run-dir>/prepare/train.jsonl`, tokenizes prompt and response apart
with the run's tokenizer (`spec.model.tokenizer`), lays each row out as
`BOS prompt response EOS PAD...` of seq_length + 1 tokens with labels -100
over BOS, prompt and padding, and writes `spec.data.shards` MindRecord files
in parallel processes to `<run-dir>/tokenize/`, with a manifest holding the
token-length histogram, the padding share and the truncated rows.

With `spec.data.batching.mode: bucketed` (what `auto`, the default, means
unless a LoRA target is in BUCKETING_UNSUPPORTED) rows are written
unpadded, in the order data/bucketing.py chooses (similar lengths share a
training step), and MindFormers pads each batch only to its longest row; the
manifest's `batching` tells the train stage to configure that. `padded`
writes every row padded to seq_length + 1, as MindFormers' own
llama_preprocess does.

Packing several samples into one row is not done: MindFormers' qa rows
(input_ids, labels) get one causal mask per row, so packed samples would
attend to each other. MindFormers 1.9 separates them only with
`use_eod_attn_mask_compression` + `actual_seq_len`, which needs flash
attention (Ascend only), and its legacy Llama (the one the seeds' configs
build) takes `actual_seq_len` as the 19th argument of `construct` while the
Trainer hands dataset columns over by position; the contest's MindFormers
r1.1 has no such path at all. Bucketing reaches the same padding goal on
every profile (see `make bench`).

The output is shared through the recipe cache (data/recipe_cache.py): a run
whose data recipe another run on the same volume already tokenized links that
output in instead (`reused` in the result).

Python API: `tokenize(spec, run_dir)`.
"""
import argparse
import os
import time
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

from mathtune_api import MathFinetuneSpec as Spec

from .. import __version__
from ..artifacts import atomic_stage_dir, is_current, read_manifest, sha256_file, sha256_json, write_manifest
from ..errors import SpecError
from ..data import bucketing, recipe_cache
from ..data.mindrecord import shard_name
from ..data.workers import Workers, parse_prepared
from ..data.seqlen import choose_seq_length, length_stats
from ..data.sources import fetch, shown
from ..data.tokenizer import load_tokenizer
from ..mindformers import families, render
from .prepare import OUTPUT as PREPARED, STAGE as PREPARE_STAGE

STAGE = "tokenize"
# LoRA targets whose training fails with MindFormers 1.9's dynamic batches
# (found by tests/unit/pipeline/train/test_memorise.py: a Mul broadcast of
# [batch, seq, head_dim] against [batch, seq, hidden] when compiling the step).
BUCKETING_UNSUPPORTED = frozenset({"wo"})
BUCKETING_UNSUPPORTED_WHY = "MindFormers 1.9 cannot train it on a symbolic sequence length"
FORMAT_VERSION = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true", help="redo the stage even if its inputs and config did not change")
    parser.add_argument("--workers", type=int, default=0,
                        help="worker processes for tokenizing and writing (default: one per CPU)")


def read_prepared(path: Path) -> Tuple[List[str], List[str]]:
    """Prompts and responses of prepare's JSON lines (Python API; the stage parses in its workers)."""
    return parse_prepared(prepared_lines(path), str(path))


def prepared_lines(path: Path) -> List[bytes]:
    if not path.is_file():
        raise SpecError(str(path), "the prepare stage's output (run `mathtune-pipeline prepare` first)")
    return [ln for ln in path.read_bytes().split(b"\n") if ln.strip()]


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def recipe(spec: Spec, run_dir: Path) -> Tuple[Path, Dict[str, str]]:
    """The tokenizer file, and what decides this stage's output besides the prepared rows:
    its config digest and the tokenizer's sha256 (what the manifest's digests and the
    recipe cache's key are made of: data/recipe_cache.py)."""
    tok_cfg, data = spec.model.tokenizer, spec.data
    tok_path = fetch(tok_cfg.uri, spec.storage.data_path, Path(run_dir) / "downloads", field="spec.model.tokenizer.uri")
    config_digest = sha256_json({"stage": STAGE, "formatVersion": FORMAT_VERSION, "tokenizerFormat": tok_cfg.format,
                                 "seqLength": data.seq_length, "seqLengthPercentile": data.seq_length_percentile,
                                 "shards": data.shards, "batching": _batching(spec)})
    return tok_path, {"configDigest": config_digest, "tokenizer": sha256_file(tok_path)}


def tokenize(spec: Spec, run_dir: Path, force: bool = False, workers: int = 0,
             run_name: Optional[str] = None) -> Dict[str, Any]:
    started = time.monotonic()
    run_dir = Path(run_dir)
    _batching(spec)   # validate before any work
    choose_seq_length(np.array([2]), spec.data.seq_length, spec.data.seq_length_percentile)
    prepared_path = run_dir / PREPARE_STAGE / PREPARED
    if not prepared_path.is_file():
        raise SpecError(str(prepared_path), "the prepare stage's output (run `mathtune-pipeline prepare` first)")
    tok_path, part = recipe(spec, run_dir)
    # The rows are prepare's: its digests stand for them in the key, as in prepare's own.
    prepared = read_manifest(run_dir / PREPARE_STAGE) or {}
    key = recipe_cache.recipe_key(prepared, part) if prepared.get("configDigest") and prepared.get("inputDigest") else None
    with recipe_cache.slot(spec.storage.data_path, key, STAGE, run_dir, run_name or run_dir.name, force) as cache:
        if cache.hit:
            # Built by a run whose model may differ: its ids must fit this run's embedding too.
            families.check_vocabulary(spec, (cache.hit.get("tokenizer") or {}).get("vocabSize"),
                                      families.family(spec)["model_config"]["vocab_size"])
            return cache.reused(_result(cache.hit))
        input_digest = sha256_json({"rows": sha256_file(prepared_path), "tokenizer": part["tokenizer"]})
        stage_dir = run_dir / STAGE
        if not force and is_current(stage_dir, input_digest, part["configDigest"]):
            return cache.built(_result(read_manifest(stage_dir) or {}, skipped=True))
        return cache.built(_build(spec, run_dir, tok_path, input_digest, part["configDigest"], workers, started))


def _build(spec: Spec, run_dir: Path, tok_path: Path, input_digest: str, config_digest: str,
           workers: int, started: float) -> Dict[str, Any]:
    data, tok_cfg = spec.data, spec.model.tokenizer
    shards = data.shards   # the model holds it to 1..64
    batching = _batching(spec)
    setting, percentile = data.seq_length, data.seq_length_percentile
    prepared_path = run_dir / PREPARE_STAGE / PREPARED
    fmt = tok_cfg.format
    # Writers first: they import MindSpore while this process loads and reads.
    processes = workers or _cpus()
    with Workers(writers=min(shards, processes), tokenizers=processes) as pool:
        tokenizer = load_tokenizer(tok_path, fmt)
        # Ids the model's embedding cannot hold: say so before the work.
        families.check_vocabulary(spec, tokenizer.vocab_size, families.family(spec)["model_config"]["vocab_size"])
        lines = prepared_lines(prepared_path)
        if not lines:
            raise SpecError(str(prepared_path), "at least one prepared row (prepare chose none: see its manifest)")
        rows = pool.tokenize(tokenizer, lines, str(prepared_path))
        del lines
        tokenized = time.monotonic()
        seq_length = choose_seq_length(rows.lengths, setting, percentile)
        stats = length_stats(rows, seq_length)
        # A row whose prompt fills it has no label left: it would teach nothing.
        keep = np.flatnonzero(rows.prompt_lengths < seq_length + 1)
        if len(keep) < len(rows):
            rows = _subset(rows, keep)
        if len(rows) == 0:
            raise SpecError("spec.data.seqLength",
                            f"room for at least one answer token (every prompt is longer than {seq_length})")
        if batching["mode"] == "bucketed":
            if seq_length % batching["multiple"]:
                raise SpecError("spec.data.seqLength", f"a multiple of spec.data.batching.multiple "
                                                       f"({batching['multiple']}) when batching is bucketed "
                                                       f"(got {seq_length})")
            widths = np.minimum(rows.lengths, seq_length + 1)
            order = bucketing.order(widths, batching["batchSize"], batching["dataParallel"], batching["seed"])
            rows = _subset(rows, order)
            stats.update(_bucketed_share(widths[order], batching, stats["paddingShare"]))
        bounds = np.linspace(0, len(rows), shards + 1).astype(int)
        with atomic_stage_dir(run_dir, STAGE) as tmp:
            pad = batching["mode"] == "padded"
            tasks = [(str(tmp / shard_name(i, shards)), rows.slice(bounds[i], bounds[i + 1]), seq_length,
                      tokenizer.pad_id, pad) for i in range(shards)]
            written = pool.write(tasks)
            files = [shard_name(i, shards) for i in range(shards)]
            stats.update({"written": int(sum(written)), "shardRows": [int(n) for n in written],
                          "seconds": round(time.monotonic() - started, 3),
                          "tokenizeSeconds": round(tokenized - started, 3)})
            manifest = write_manifest(
                tmp, stage=STAGE, input_digest=input_digest, config_digest=config_digest,
                outputs={"shards": [f"{STAGE}/{f}" for f in files], "dir": STAGE},
                counts=stats,
                extra={"tokenizer": {"uri": shown(tok_cfg.uri), "format": fmt, "engine": tokenizer.engine,
                                     "bos": tokenizer.bos_id, "eos": tokenizer.eos_id, "pad": tokenizer.pad_id,
                                     "vocabSize": tokenizer.vocab_size},
                       "schema": {"input_ids": f"int32[{'seqLength+1' if pad else '<=seqLength+1'}]",
                                  "labels": f"int32[{'seqLength+1' if pad else '<=seqLength+1'}], -100 masked"},
                       "batching": batching, "packing": False, "pipelineVersion": __version__})
    return _result(manifest)


def _batching(spec: Spec) -> Dict[str, Any]:
    """The batching the rows are laid out for. Bucketed rows are ordered for
    one global batch (batchSize x dataParallel) per step, so those are part of
    it."""
    mode, multiple = spec.data.batching.mode, spec.data.batching.multiple
    unsupported = BUCKETING_UNSUPPORTED & set(spec.lora.target_modules)
    if mode == "bucketed" and unsupported:
        raise SpecError("spec.data.batching.mode", f"auto or padded with LoRA on {', '.join(sorted(unsupported))} "
                                                   f"({BUCKETING_UNSUPPORTED_WHY})")
    if mode == "padded":
        return {"mode": "padded"}
    if unsupported:
        return {"mode": "padded", "requested": mode,
                "reason": f"LoRA on {', '.join(sorted(unsupported))}: {BUCKETING_UNSUPPORTED_WHY}"}
    training = spec.training
    # Semi-auto parallel (render's mode 1) reads the whole global batch on every card.
    return {"mode": "bucketed", "multiple": multiple, "batchSize": training.batch_size,
            "dataParallel": spec.resources.parallel.data_parallel, "seed": training.seed,
            "perRankBatches": render.parallel_mode(spec) == 0}


def _bucketed_share(widths: np.ndarray, batching: Mapping[str, Any], padded_share: float) -> Dict[str, Any]:
    """The padding share of the bucketed layout, for rows of these widths in
    written order (replacing the padded one's, which stays for comparison):
    what each rank's batches compute."""
    tokens = bucketing.computed_tokens(widths, batching["batchSize"], batching["dataParallel"], batching["multiple"],
                                       batching["perRankBatches"])
    share = round(1 - tokens["real"] / tokens["computed"], 4) if tokens["computed"] else 0.0
    return {"paddingShareIfPadded": padded_share, "computedTokens": tokens["computed"], "paddingShare": share}


def _subset(rows, keep):
    from ..data.seqlen import TokenRows

    pieces = [rows.ids[rows.starts[i]: rows.starts[i] + rows.lengths[i]] for i in keep]
    lengths = rows.lengths[keep]
    starts = np.zeros(len(keep), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    ids = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int32)
    return TokenRows(ids, starts, lengths, rows.prompt_lengths[keep])


def _result(manifest: Mapping[str, Any], skipped: bool = False) -> Dict[str, Any]:
    c = manifest["counts"]
    result = {"rows": c["written"], "seqLength": c["seqLength"], "truncated": c["truncated"],
              "paddingShare": c["paddingShare"], "shards": len(manifest["outputs"]["shards"]),
              "outputs": {"dir": manifest["outputs"]["dir"]}}
    if c.get("noLabels"):
        result["dropped"] = c["noLabels"]
    if skipped:
        result["skipped"] = True
    return result


def run(args: argparse.Namespace, spec: Spec, metadata: Dict[str, Any]) -> Dict[str, Any]:
    return tokenize(spec, Path(args.run_dir), force=args.force, workers=args.workers, run_name=metadata.get("name"))
