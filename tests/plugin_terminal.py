"""`kubectl mathtune` in a pseudo-terminal (pexpect), as a person runs it."""
import os
import sys
import threading
from pathlib import Path

import pexpect

from hack.cluster import local

PLUGIN = str(Path(sys.executable).with_name("kubectl-mathtune"))


def spawn(kubeconfig, namespace, *args):
    """The plugin in a pseudo-terminal of 160 columns; a thread reads all it prints until it exits."""
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "160", "LINES": "50", "KUBECTL": str(local.KUBECTL)}
    child = pexpect.spawn(PLUGIN, ["--kubeconfig", str(kubeconfig), "-n", namespace, *args], env=env,
                          encoding="utf-8", codec_errors="replace", timeout=None, dimensions=(50, 160))
    reader = threading.Thread(target=child.expect, args=(pexpect.EOF,), daemon=True)
    reader.start()
    return child, reader


def finished(child, reader, timeout=120):
    """(exit code, everything it printed) once it exits by itself within `timeout` seconds."""
    reader.join(timeout)
    assert not reader.is_alive(), f"still running after {timeout}s: {(child.before or '')[-2000:]}"
    child.close()
    return child.exitstatus, child.before
