"""The CPU example's inputs as `mathtune-pipeline demo-data` makes them (a
BPE tokenizer trained on the demo's text, the base model warmed up on it, the
synthetic rows), made once and kept in the cache, as the cluster's binaries
are.

The warm-up is a minute or more of MindSpore on 2 cores, and two tests need
its output (the e2e run and run-local's). What demo-data writes follows from
the pipeline's code, the MindSpore and MindFormers installed and its seed
(it reads no fixture); the cache is keyed by all of these, so any change to
them makes it anew.
"""
import fcntl
import hashlib
import importlib.metadata
import shutil
import subprocess
import sys
from pathlib import Path

from hack.cluster import local

PIPELINE = local.REPO / "pipeline"


def _key() -> str:
    digest = hashlib.sha256()
    for root in (PIPELINE / "mathtune_pipeline",):
        for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    for dist in ("mindspore", "mindformers"):
        digest.update(f"{dist}=={importlib.metadata.version(dist)}".encode())
    return digest.hexdigest()[:16]


def made() -> Path:
    """The directory demo-data filled (the example's <dataPath>/fixtures),
    made now unless the cache has it. Safe for test sessions side by side:
    one makes it, the other waits for it."""
    home = local.CACHE / "demo-data"
    home.mkdir(parents=True, exist_ok=True)
    done = home / _key()
    with open(home / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.is_dir():
            return done
        building = home / f"{done.name}.partial"
        shutil.rmtree(building, ignore_errors=True)
        proc = subprocess.run([sys.executable, "-m", "mathtune_pipeline.cli", "demo-data", "--out", str(building)],
                              capture_output=True, text=True, timeout=1200)
        if proc.returncode != 0:
            raise RuntimeError(f"demo-data failed ({proc.returncode}):\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
        for logs in list(building.rglob(".mindformers")):  # MindFormers' logs of the warm-up
            shutil.rmtree(logs)
        building.rename(done)
        for stale in home.iterdir():  # what older code made
            if stale.is_dir() and stale != done:
                shutil.rmtree(stale, ignore_errors=True)
        return done
