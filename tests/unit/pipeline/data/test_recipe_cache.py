"""The data recipe cache (data/recipe_cache.py): runs on one work volume with the same
data recipe prepare and tokenize it once. Real stages through the command line, on
tiny synthetic contest rows and the real Llama 3 tokenizer; the race is two real
processes."""
import json
import multiprocessing
import os
import shutil
from pathlib import Path

import pytest
import yaml

from mathtune_pipeline.cli import main
from mathtune_pipeline.data.synth import write_synth
from tests import stage_result
from tests.specs import whole

pytestmark = pytest.mark.mindspore

STAGES = ("prepare", "tokenize")


@pytest.fixture
def volume(tmp_path, llama3_tokenizer_json):
    """A work volume holding the source rows and the tokenizer, as a sweep's runs share it."""
    vol = tmp_path / "data"
    (vol / "models").mkdir(parents=True)
    write_synth(vol / "train.json", total=300, seed=3)
    shutil.copy(llama3_tokenizer_json, vol / "models" / "tokenizer.json")
    return vol


def spec_file(vol: Path, run: str, **data) -> Path:
    """Run `run`'s resource: paths relative to the volume, as a sweep's runs name them."""
    path = vol.parent / f"{run}.yaml"
    spec = whole({"model": {"tokenizer": {"uri": "models/tokenizer.json"}},
                  "data": {"source": {"uri": "train.json"}, "seqLength": 256, "batching": {"mode": "padded"}, **data},
                  "storage": {"dataPath": str(vol)}})
    path.write_text(yaml.safe_dump({"apiVersion": "mathtune.dev/v1alpha1", "kind": "MathFinetune",
                                    "metadata": {"name": run}, "spec": spec}))
    return path


def stage(name: str, vol: Path, run: str, *extra: str, **data):
    """One stage of run `run` as its Job runs it; (exit code, result)."""
    result_file = vol.parent / f"{run}-{name}.json"
    args = [name, "--spec", str(spec_file(vol, run, **data)), "--run-dir", str(vol / "runs" / run),
            "--result-file", str(result_file), *extra]
    if name == "tokenize":
        args += ["--workers", "1"]
    code = main(args)
    return code, stage_result.check(json.loads(result_file.read_text()))


def entry(vol: Path, key: str) -> Path:
    found = [p for p in (vol / "cache" / "data").iterdir() if p.is_dir() and p.name.startswith(key)]
    assert len(found) == 1, found
    return found[0]


def builders(vol: Path, key: str):
    manifest = json.loads((entry(vol, key) / "manifest.json").read_text())
    return {name: record["builtBy"] for name, record in manifest["stages"].items()}


def files(stage_dir: Path):
    return sorted(p.relative_to(stage_dir).as_posix() for p in stage_dir.rglob("*") if p.is_file())


def test_a_second_run_with_the_same_recipe_reuses_the_first_ones_data(volume):
    first = {name: stage(name, volume, "sweep-a") for name in STAGES}
    assert all(code == 0 for code, _ in first.values()), first
    key = first["prepare"][1]["cacheKey"]
    assert len(key) == 16 and first["tokenize"][1]["cacheKey"] == key
    assert not any("reused" in result for _, result in first.values())
    assert builders(volume, key) == {"prepare": "sweep-a", "tokenize": "sweep-a"}

    second = {name: stage(name, volume, "sweep-b") for name in STAGES}
    for name, (code, result) in second.items():
        assert code == 0, result
        assert result["reused"] == {"key": key, "from": "sweep-a"} and result["cacheKey"] == key
        assert "skipped" not in result
        assert {k: v for k, v in result.items() if k not in ("reused", "cacheKey", "disk")} == \
            {k: v for k, v in first[name][1].items() if k not in ("cacheKey", "disk")}
        a, b = volume / "runs" / "sweep-a" / name, volume / "runs" / "sweep-b" / name
        assert files(a) == files(b) and files(b), name
        for rel in files(b):
            assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
            # The same file, not a second tokenization that came out the same.
            assert os.stat(a / rel).st_ino == os.stat(b / rel).st_ino, rel
    # At the usual paths, as the manifest lists them: what train reads.
    shards = json.loads((volume / "runs" / "sweep-b" / "tokenize" / "manifest.json").read_text())["outputs"]["shards"]
    assert shards and all((volume / "runs" / "sweep-b" / s).is_file() for s in shards)
    assert builders(volume, key) == {"prepare": "sweep-a", "tokenize": "sweep-a"}
    # A retried pod: still a reuse (status keeps saying so), still the same files; the builder's own re-run skips.
    for name in STAGES:
        code, again = stage(name, volume, "sweep-b")
        assert code == 0 and again["reused"] == {"key": key, "from": "sweep-a"}, again
        code, own = stage(name, volume, "sweep-a")
        assert code == 0 and own.get("skipped") is True and "reused" not in own and own["cacheKey"] == key
    rows = "prepare/train.jsonl"
    assert os.stat(volume / "runs" / "sweep-a" / rows).st_ino == os.stat(volume / "runs" / "sweep-b" / rows).st_ino


def test_a_different_data_setting_gets_its_own_key_and_builds(volume):
    code, base = stage("prepare", volume, "sweep-a")
    assert code == 0, base
    # A prepare setting, and a tokenize one: each decides the data, so each is its own recipe.
    changed = {"quota": {"sample": {"mode": "quota", "seed": 42, "quotas": {"add": 5, "mean": 3}}},
               "seqLength": {"seqLength": 128}}
    keys = {base["cacheKey"]}
    for run, data in changed.items():
        code, result = stage("prepare", volume, run.lower(), **data)
        assert code == 0, result
        assert "reused" not in result and result["cacheKey"] not in keys, run
        keys.add(result["cacheKey"])
        assert builders(volume, result["cacheKey"]) == {"prepare": run.lower()}
    assert len([p for p in (volume / "cache" / "data").iterdir() if p.is_dir()]) == 3


def _race(vol: str, run: str, barrier) -> None:
    """One run's data stages in a process of its own, started with the other's."""
    barrier.wait()
    for name in STAGES:
        code, _ = stage(name, Path(vol), run)
        if code:
            raise SystemExit(code)


def test_two_runs_racing_for_one_recipe_build_it_once(volume):
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_race, args=(str(volume), run, barrier)) for run in ("race-a", "race-b")]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=300)
    assert [proc.exitcode for proc in procs] == [0, 0]
    results = {(run, name): json.loads((volume.parent / f"{run}-{name}.json").read_text())
               for run in ("race-a", "race-b") for name in STAGES}
    key = results["race-a", "prepare"]["cacheKey"]
    assert {r["cacheKey"] for r in results.values()} == {key}
    built = builders(volume, key)
    for name in STAGES:
        # One built it (the entry names it); the other waited, then reused that one's.
        builder = built[name]
        other = {"race-a": "race-b", "race-b": "race-a"}[builder]
        assert "reused" not in results[builder, name]
        assert results[other, name]["reused"] == {"key": key, "from": builder}, name
    leftovers = [p.name for p in (volume / "cache" / "data").iterdir() if p.name.startswith(".")]
    assert leftovers == []


@pytest.mark.parametrize("damage", ["manifest never written", "stage published but not listed", "file cut short"])
def test_a_half_written_entry_is_not_used(volume, damage):
    code, first = stage("prepare", volume, "sweep-a")
    assert code == 0, first
    where = entry(volume, first["cacheKey"])
    leftover = volume / "cache" / "data" / f".build-{where.name}-prepare-deadbeef"
    if damage == "manifest never written":
        (where / "manifest.json").unlink()
    elif damage == "stage published but not listed":
        # A crash between the rename into the entry and the manifest's rewrite, another mid-copy.
        (where / "manifest.json").write_text(json.dumps({"key": where.name, "stages": {}}))
        shutil.copytree(where / "prepare", leftover)
    else:
        rows = where / "prepare" / "train.jsonl"
        cut = rows.with_name("cut")
        cut.write_bytes(rows.read_bytes()[:100])
        cut.replace(rows)   # a new file: sweep-a's own (hardlinked) rows stay whole
    code, second = stage("prepare", volume, "sweep-b")
    assert code == 0, second
    assert "reused" not in second and second["cacheKey"] == first["cacheKey"]
    assert second["rows"] == first["rows"]
    assert builders(volume, first["cacheKey"]) == {"prepare": "sweep-b"}, "rebuilt and published again"
    assert not leftover.exists()
    rows_b = (volume / "runs" / "sweep-b" / "prepare" / "train.jsonl").read_bytes()
    assert rows_b == (where / "prepare" / "train.jsonl").read_bytes() and len(rows_b) > 100


def test_force_rebuilds_and_publishes_again(volume):
    assert stage("prepare", volume, "sweep-a")[0] == 0
    code, forced = stage("prepare", volume, "sweep-b", "--force")
    assert code == 0 and "reused" not in forced and "skipped" not in forced
    assert builders(volume, forced["cacheKey"]) == {"prepare": "sweep-b"}
    code, later = stage("prepare", volume, "sweep-c")
    assert code == 0 and later["reused"]["from"] == "sweep-b"


def test_without_a_volume_at_data_path_the_key_is_reported_and_nothing_is_cached(tmp_path, llama3_tokenizer_json):
    source = tmp_path / "train.json"
    write_synth(source, total=100, seed=1)
    missing = tmp_path / "no-volume"
    spec = tmp_path / "run.yaml"
    spec.write_text(yaml.safe_dump({"metadata": {"name": "alone"}, "spec": whole({
        "model": {"tokenizer": {"uri": str(llama3_tokenizer_json)}}, "data": {"source": {"uri": str(source)}},
        "storage": {"dataPath": str(missing)}})}))
    result_file = tmp_path / "result.json"
    assert main(["prepare", "--spec", str(spec), "--run-dir", str(tmp_path / "run"),
                 "--result-file", str(result_file)]) == 0
    result = stage_result.check(json.loads(result_file.read_text()))
    assert len(result["cacheKey"]) == 16 and "reused" not in result
    assert not missing.exists()
