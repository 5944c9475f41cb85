"""A stage makes its own $HOME: stage pods point HOME into a root-owned
emptyDir, and MindFormers' mindpet refuses a $HOME its user does not own."""
import os
import subprocess
import sys
from pathlib import Path

CLI = Path(sys.executable).parent / "mathtune-pipeline"


def test_a_missing_home_is_made_and_owned_by_the_stage(tmp_path):
    home = tmp_path / "scratch" / "home"
    out = subprocess.run([str(CLI), "--help"], env={**os.environ, "HOME": str(home)}, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert home.is_dir()
    assert home.stat().st_uid == os.geteuid() and (home.stat().st_mode & 0o777) == 0o700
