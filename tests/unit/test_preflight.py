"""make demo and make test check what they cannot do without before any build, and say the fix."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _preflight(tmp_path, *, keep=(), what="demo"):
    """preflight.sh with a PATH holding only the named tools (python3 is this interpreter)."""
    bin_dir = tmp_path / f"bin-{what}-{len(keep)}"
    bin_dir.mkdir()
    for tool in ("bash", "sed", "df", "tail", "tr", "mkdir", "id", *keep):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    (bin_dir / "python3").symlink_to(sys.executable)
    env = {"PATH": str(bin_dir), "HOME": str(tmp_path), "MATHTUNE_CACHE": str(tmp_path / "cache")}
    return subprocess.run([shutil.which("bash"), str(REPO / "hack" / "preflight.sh"), what], env=env,
                          capture_output=True, text=True, timeout=60)


def test_a_missing_go_and_gcc_are_named_with_their_fix(tmp_path):
    done = _preflight(tmp_path, keep=("apt-get",))
    assert done.returncode == 1
    assert "make demo cannot run here" in done.stderr
    assert "go missing: install Go >= 1.26" in done.stderr and "gcc missing: apt-get install gcc" in done.stderr


def test_npm_is_needed_for_the_tests_only(tmp_path):
    keep = ("go", "gcc", "apt-get")
    assert "npm missing" not in _preflight(tmp_path, keep=keep, what="demo").stderr
    assert "npm missing" in _preflight(tmp_path, keep=keep, what="test").stderr


def test_this_machine_passes(tmp_path):
    if os.geteuid() != 0:
        raise AssertionError("the suite runs as root (the local node needs it)")
    done = subprocess.run(["bash", str(REPO / "hack" / "preflight.sh"), "test"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("[preflight] ok:")
