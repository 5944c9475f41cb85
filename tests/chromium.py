"""Headless Chromium (Debian's package, installed by `make node-deps`): a page
rendered by a real browser, its DOM dumped or a screenshot taken."""
import os
import shutil
import signal
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest


class TrialRows(HTMLParser):
    """The page's trial rows (their ids) and images (their sources), as the browser left the DOM."""
    def __init__(self):
        super().__init__()
        self.rows, self.images = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and "trial" in (attrs.get("class") or "").split():
            self.rows.append(attrs.get("id"))
        if tag == "img":
            self.images.append(attrs.get("src") or "")


def binary() -> str:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.fail("chromium is not installed: run `make node-deps` as root (hack/node/deps.sh installs Debian's "
                    "chromium), which this test needs to render the sweep report")
    return binary


def headless(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """Chromium in its own process group, so a page that hangs it (a dialog a script opened) ends with all of its
    helper processes."""
    command = [binary(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               f"--user-data-dir={tmp_path / 'profile'}", *args]
    with subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as proc:
        try:
            out, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            pytest.fail(f"chromium did not finish in 120 s: {' '.join(args)}")
    return subprocess.CompletedProcess(command, proc.returncode, out, err)
