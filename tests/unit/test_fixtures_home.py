"""The real fixtures have one home: only hack/fixtures/store.py knows where they
are. Any other file that builds their path would break a bare clone (no team
folder beside it) or a cache moved by MATHTUNE_FIXTURES."""
import subprocess
from pathlib import Path

from hack.fixtures import store

REPO = Path(__file__).resolve().parents[2]
HELPER = "hack/fixtures/store.py"
THIS = "tests/unit/test_fixtures_home.py"   # it points the helper at an empty folder to test the banner
# Who may name the team's folder beside the checkout: the helper, the
# Makefile's target that explains it, the README.
MAY_NAME_THE_TEAM_FOLDER = {HELPER, "Makefile", "README.md"}
# Built from pieces so that this file does not match itself.
TEAM_FOLDER = ".." + "/shared"
FOLDER_READS = (
    '"shared" ' + "/",                      # Path(...) / "shared" / "fixtures"
    "MATHTUNE_" + "SHARED_FIXTURES",        # the variable the helper replaced
    "MATHTUNE_" + "FIXTURES\"",             # the helper's variable, read elsewhere
    '/ "fixtures" / "' + "tokenizers",      # the cache's layout, rebuilt elsewhere
    '/ "fixtures" / "' + "contest",
)


def _project_files():
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                            text=True, check=True).stdout.split()
    for name in listed:
        path = REPO / name
        if path.is_file() and path.suffix not in (".png", ".ckpt", ".gz", ".tgz"):
            try:
                yield name, path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue


def test_only_the_helper_reads_the_fixtures_folder():
    offenders = [f"{name}: {pattern}" for name, text in _project_files() if name not in (HELPER, THIS)
                 for pattern in FOLDER_READS if pattern in text]
    assert offenders == [], "build fixture paths with hack.fixtures.store.path(), not by hand:\n" + "\n".join(offenders)


def test_at_most_three_files_name_the_team_folder():
    naming = sorted(name for name, text in _project_files() if TEAM_FOLDER in text)
    assert set(naming) <= MAY_NAME_THE_TEAM_FOLDER, naming


def test_the_guard_sees_what_it_guards_against():
    """The patterns are real: the helper itself matches the ones it owns."""
    text = (REPO / HELPER).read_text(encoding="utf-8")
    assert FOLDER_READS[0] in text and "MATHTUNE_FIXTURES\"" in text


def test_every_fixture_resolves_under_one_folder():
    assert {store.path(name).parent.parent for name in store.FIXTURES} == {store.ROOT}


def _pytest(tmp_path, **env):
    """A pytest session on one fixture test module, with the fixtures folder empty."""
    import os
    import sys

    empty = tmp_path / "no-fixtures"
    empty.mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/unit/pipeline/train/test_progress.py"], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "MATHTUNE_FIXTURES": str(empty), "MATHTUNE_REQUIRE_FIXTURES": "",
                               "MATHTUNE_FIXTURES_REPORT": "", **env}, timeout=300)


def test_a_bare_clone_leaves_fixture_tests_out_and_says_so_loudly(tmp_path):
    done = _pytest(tmp_path)
    assert done.returncode == 0, done.stdout[-2000:]
    assert "test(s) that need the real fixtures did NOT run" in done.stdout, done.stdout[-2000:]
    assert "make fixtures" in done.stdout


def test_ci_fails_a_test_whose_fixture_is_missing(tmp_path):
    done = _pytest(tmp_path, MATHTUNE_REQUIRE_FIXTURES="1")
    assert done.returncode == 1, done.stdout[-2000:]
    assert "real fixtures absent" in done.stdout and "did NOT run" not in done.stdout


def test_a_fixture_that_does_not_match_its_digest_is_refused(tmp_path, monkeypatch):
    import hashlib

    import pytest

    team, root = tmp_path / "team", tmp_path / "cache"
    (team / "contest").mkdir(parents=True)
    good = b'{"problem": "1 + 1", "solution": "2"}\n'
    fixture = store.Fixture("contest/x.jsonl", hashlib.sha256(good).hexdigest(), "a row", "x.json")
    monkeypatch.setattr(store, "FIXTURES", {fixture.name: fixture})
    monkeypatch.setattr(store, "TEAM_COPY", team)
    monkeypatch.setattr(store, "ROOT", root)
    (team / fixture.name).write_bytes(good + b"tampered")
    with pytest.raises(SystemExit, match="sha256 .* expected"):
        store.fetch(fixture.name)
    assert not (root / fixture.name).exists()
    (team / fixture.name).write_bytes(good)
    assert store.fetch(fixture.name) == str(team / fixture.name)
    assert (root / fixture.name).read_bytes() == good
    assert store.fetch(fixture.name) == "cached"
