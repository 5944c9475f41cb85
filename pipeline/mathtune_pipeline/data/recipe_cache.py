"""Each data recipe prepared once per work volume: prepare's and tokenize's outputs, shared by every run.

The runs of a sweep share one volume and, mostly, one data recipe; without this each
would redo prepare and tokenize. `<dataPath>/cache/data/<key>/` holds `prepare/` and
`tokenize/` exactly as a run dir has them. The key (`recipe_key`) is made of the digests
the two stages already compare to skip an unchanged re-run, so one rule says when two
runs' data is the same.

A stage holds an exclusive `flock` on `<dataPath>/cache/data/<key>.lock` around
check, build and publish, so runs racing for one key (processes, or pods on one
volume) build it once: the other waits, then reuses. Publishing builds the stage in
a temp dir of the cache root, renames it into the entry, and rewrites the entry's
`manifest.json` last; a stage that manifest does not list (a crash in between), or
whose files differ from what it lists, is never used. A hit hardlinks the entry's
files into the run dir (copies them across filesystems): later stages read their
usual paths, and a run dir never depends on the cache, so deleting
`<dataPath>/cache` is always safe.
"""
import fcntl
import json
import os
import shutil
import socket
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, Mapping, Optional

from ..artifacts import MANIFEST, atomic_stage_dir, read_manifest, sha256_json

SHORT = 16   # hex digits of the key that results, status and messages show


def recipe_key(prepare: Mapping[str, Any], tokenize: Mapping[str, Any]) -> str:
    """What decides prepare's and tokenize's outputs. `prepare`: the configDigest and
    inputDigest its manifest records (spec.data but tokenize's settings, the format
    version; the source, mix and held-out files' bytes, and what picks the held-out rows
    the leakage check compares with). `tokenize`: its configDigest
    (tokenizer format, seqLength, seqLengthPercentile, shards, batching, format version)
    and the tokenizer file's sha256. The prepared rows are left out: the prepare digests
    decide them."""
    return sha256_json({"prepare": {"configDigest": prepare["configDigest"], "inputDigest": prepare["inputDigest"]},
                        "tokenize": {"configDigest": tokenize["configDigest"], "tokenizer": tokenize["tokenizer"]}})


def cache_root(data_path: str) -> Optional[Path]:
    """`<dataPath>/cache/data`; None when nothing is mounted at dataPath (a local run with
    no volume has nobody to share with) or it cannot be written (the stage goes on without)."""
    if not Path(data_path).is_dir():
        return None
    root = Path(data_path) / "cache" / "data"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"data cache: not used ({root}: {exc})", flush=True)
        return None
    return root


def _files(stage_dir: Path) -> Dict[str, int]:
    """Every file of a stage dir (relative path -> bytes): what an entry must still hold to be used."""
    return {p.relative_to(stage_dir).as_posix(): p.stat().st_size for p in sorted(stage_dir.rglob("*")) if p.is_file()}


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _clone(src: Path, dst: Path) -> None:
    """`src`'s files into `dst`, hardlinked: no bytes written, and a later rebuild of either
    side replaces its files (stages rename new dirs in) rather than writing into shared ones.
    Copied where a link cannot be made (another filesystem)."""
    for rel in _files(src):
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src / rel, target)
        except OSError:
            shutil.copy2(src / rel, target)


class Slot:
    """One stage's place in one entry, held under the entry's lock. `hit` is the
    stage's manifest when the entry's output is now in the run dir (another run built
    it); otherwise the stage builds (or skips) as without a cache, and `built` publishes."""

    def __init__(self, root: Optional[Path], key: Optional[str], stage: str, run_dir: Path, run_name: str,
                 force: bool):
        self.root, self.key, self.stage, self.run_dir, self.run_name, self.force = \
            root, key, stage, run_dir, run_name, force
        self.short = key[:SHORT] if key else ""
        self.hit: Optional[Dict[str, Any]] = None
        self.record: Optional[Dict[str, Any]] = None   # the entry's record of the stage, when valid

    @property
    def entry(self) -> Path:
        assert self.root is not None and self.key is not None
        return self.root / self.key

    def _entry_manifest(self) -> Dict[str, Any]:
        found = read_manifest(self.entry)
        if found and found.get("key") == self.key and isinstance(found.get("stages"), dict):
            return found
        return {"key": self.key, "stages": {}}

    def _valid_record(self) -> Optional[Dict[str, Any]]:
        """The entry's record of this stage if its files are all there as published."""
        record = self._entry_manifest()["stages"].get(self.stage)
        if not record:
            return None
        stage_dir = self.entry / self.stage
        manifest = read_manifest(stage_dir) or {}
        if (manifest.get("configDigest"), manifest.get("inputDigest")) != \
                (record.get("configDigest"), record.get("inputDigest")):
            return None
        try:
            return record if _files(stage_dir) == record.get("files") else None
        except OSError:
            return None

    def look(self) -> None:
        """Put the entry's output in the run dir, unless the run's own build of it is there."""
        self.record = self._valid_record()
        if self.force or not self.record:
            return
        here, there = self.run_dir / self.stage, self.entry / self.stage
        mine = read_manifest(here) or {}
        if self.record.get("builtBy") == self.run_name and \
                (mine.get("configDigest"), mine.get("inputDigest")) == \
                (self.record.get("configDigest"), self.record.get("inputDigest")):
            return   # the run's own output: its stage's skip (is_current) covers a re-run
        if not _same_file(here / MANIFEST, there / MANIFEST):   # else linked by an earlier attempt: a hit still
            try:
                with atomic_stage_dir(self.run_dir, self.stage) as tmp:
                    _clone(there, tmp)
            except OSError as exc:   # the entry went away meanwhile (cache deleted): build instead
                print(f"data cache: {self.stage} not reused ({exc})", flush=True)
                return
        self.hit = read_manifest(here)
        print(f"{self.stage}: reused the data run {self.record['builtBy']} built (cache key {self.short})",
              flush=True)

    def reused(self, result: Dict[str, Any]) -> Dict[str, Any]:
        assert self.record is not None and self.key is not None
        return {**result, "reused": {"key": self.short, "from": self.record["builtBy"]},
                "cacheKey": self.short}

    def built(self, result: Dict[str, Any]) -> Dict[str, Any]:
        """The stage's result; its output published when the entry lacks it (or --force rebuilt it)."""
        if self.key is None:
            return result
        if self.root is not None and (self.force or self.record is None):
            try:
                self._publish()
            except OSError as exc:   # the cache only saves time: a full or read-only volume must not fail the run
                print(f"data cache: {self.stage} not published ({exc})", flush=True)
        return {**result, "cacheKey": self.short}

    def _publish(self) -> None:
        assert self.root is not None and self.key is not None
        source = self.run_dir / self.stage
        manifest = read_manifest(source)
        if not manifest:
            return
        for stale in self.root.glob(f".build-{self.key}-*"):   # a crashed publisher's (the lock is ours)
            shutil.rmtree(stale, ignore_errors=True)
        tmp = self.root / f".build-{self.key}-{self.stage}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        _clone(source, tmp)
        record = {"builtBy": self.run_name, "files": _files(tmp), "configDigest": manifest.get("configDigest"),
                  "inputDigest": manifest.get("inputDigest"), "host": socket.gethostname(),
                  "publishedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        self.entry.mkdir(exist_ok=True)
        entry = self._entry_manifest()
        final = self.entry / self.stage
        if final.exists():   # unlisted first, then replaced: a crash in between leaves it unlisted, never used
            entry["stages"].pop(self.stage, None)
            _write_json(self.entry / MANIFEST, entry)
            shutil.rmtree(final)
        tmp.rename(final)
        entry["stages"][self.stage] = record
        _write_json(self.entry / MANIFEST, entry)   # last: only now is the stage part of the entry


def _write_json(path: Path, value: Mapping[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps(value, indent=2, sort_keys=True), encoding="utf-8")
    tmp.replace(path)


def _open_lock(path: Path) -> Optional[int]:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:   # the cache deleted under us, or not writable: go on without it
        print(f"data cache: not used ({path}: {exc})", flush=True)
        return None


@contextmanager
def _locked(fd: int, stage: str, run_name: str, short: str) -> Iterator[None]:
    """An exclusive flock on the lock file `fd` (released when the descriptor closes: a
    crashed holder's too). It names its holder, so a run that waits says for whom."""
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 256, 0).decode(errors="replace").strip() or "another run"
            print(f"{stage}: waiting for {holder} to finish the same data (cache key {short})", flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"run {run_name} ({stage}, pid {os.getpid()} on {socket.gethostname()})".encode(), 0)
        yield
    finally:
        os.close(fd)


@contextmanager
def slot(data_path: str, key: Optional[str], stage: str, run_dir: Path, run_name: str,
         force: bool = False) -> Iterator[Slot]:
    """The stage's slot in the entry of `key`, locked for the block: look for a hit, or
    build in the block and publish with `built`. A None key (the stage could not make
    one) or no volume at dataPath gives a slot that only adds `cacheKey`."""
    root = cache_root(data_path) if key else None
    fd = _open_lock(root / f"{key}.lock") if root is not None and key else None
    if root is None or key is None or fd is None:
        yield Slot(None, key, stage, Path(run_dir), run_name, force)
        return
    with _locked(fd, stage, run_name, key[:SHORT]):
        claimed = Slot(root, key, stage, Path(run_dir), run_name, force)
        claimed.look()
        yield claimed
