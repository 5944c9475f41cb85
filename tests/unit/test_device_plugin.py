"""The emulated Ascend device plugin's own Go tests (hack/ascend-device-plugin:
ListAndWatch and Allocate against a fake kubelet, the device-info ConfigMap,
the pods' huawei.com/AscendReal, the API server writes). `make binaries`
builds the plugin, so its modules are in Go's cache by then."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[2] / "hack" / "ascend-device-plugin"


def test_the_device_plugins_go_tests_pass():
    if shutil.which("go") is None:
        pytest.fail("go is not on PATH: the device plugin's tests need Go (the machine's polyglot toolchain)",
                    pytrace=False)
    env = dict(os.environ, CGO_ENABLED="0", GOFLAGS="-mod=mod", GOTOOLCHAIN="local")
    proc = subprocess.run(["go", "test", "-count=1", "./..."], cwd=SOURCE, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert proc.stdout.startswith("ok "), proc.stdout
