"""Atomic stage outputs with a manifest, and content digests for stage caching.

A stage writes into `<run-dir>/.<stage>.tmp-<pid>/` and renames it to
`<run-dir>/<stage>/` only when complete, so a crash never leaves a half-written
stage that a re-run would mistake for done. The manifest records what went in
(input and config digests) and what came out, so an unchanged re-run can skip.
"""
import hashlib
import json
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, Optional

MANIFEST = "manifest.json"
_CHUNK = 1 << 20


def sha256_file(path: os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_json(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def read_manifest(stage_dir: os.PathLike) -> Optional[Dict[str, Any]]:
    try:
        with open(Path(stage_dir) / MANIFEST, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def is_current(stage_dir: os.PathLike, input_digest: str, config_digest: str) -> bool:
    """True when the stage already ran to completion on the same inputs and config."""
    manifest = read_manifest(stage_dir)
    return bool(manifest) and manifest.get("inputDigest") == input_digest and \
        manifest.get("configDigest") == config_digest


@contextmanager
def atomic_stage_dir(run_dir: os.PathLike, stage: str) -> Iterator[Path]:
    """Yield a temp dir; on success it replaces `<run-dir>/<stage>` in one rename."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    final = run_dir / stage
    tmp = run_dir / f".{stage}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if final.exists():
        old = run_dir / f".{stage}.old-{os.getpid()}"
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
    tmp.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_manifest(stage_dir: os.PathLike, *, stage: str, input_digest: str, config_digest: str,
                   outputs: Dict[str, Any], counts: Dict[str, Any], extra: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    manifest = {
        "stage": stage,
        "inputDigest": input_digest,
        "configDigest": config_digest,
        "outputs": outputs,
        "counts": counts,
        "createdAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if extra:
        manifest.update(extra)
    path = Path(stage_dir) / MANIFEST
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)
    return manifest
