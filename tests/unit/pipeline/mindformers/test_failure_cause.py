"""Why msrun failed, read from what MindSpore itself writes when a save hits a full disk: a real
save_checkpoint into a 1 MiB tmpfs (mounting one needs root, as the local cluster does)."""
import os
import subprocess
import sys

import pytest

from mathtune_pipeline.disk import free_bytes
from mathtune_pipeline.mindformers import failure

SAVE = """
import numpy as np, mindspore as ms
from mindspore import nn
class Net(nn.Cell):
    def __init__(self):
        super().__init__()
        self.w = ms.Parameter(ms.Tensor(np.ones((512, 1024), np.float32)), name="w")
    def construct(self, x):
        return x
ms.save_checkpoint(Net(), sys.argv[1])
"""


@pytest.fixture
def full_volume(tmp_path):
    assert os.geteuid() == 0, "this test mounts a tmpfs: run it as root (the local cluster needs root too)"
    volume = tmp_path / "volume"
    volume.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(volume)], check=True)
    yield volume
    subprocess.run(["umount", "-l", str(volume)], check=False)


@pytest.mark.mindspore
def test_a_save_into_a_full_volume_is_named_as_such(full_volume):
    target = full_volume / "rank_0" / "llama_rank_0-3_46.ckpt"
    target.parent.mkdir()
    saved = subprocess.run([sys.executable, "-c", "import sys\n" + SAVE, str(target)], capture_output=True,
                           text=True, timeout=300)
    assert saved.returncode != 0, "the save fitted: the volume is not full"
    why = failure.cause([saved.stdout + saved.stderr], "/data/runs/r/train.work", free_bytes(full_volume))
    assert why is not None and why.startswith(f"saving {target} failed: the work volume (/data/runs/r/train.work) "
                                              f"is full (No space left on device, ")
    assert "spec.storage.size" in why


def test_free_space_alone_says_full_and_nothing_known_says_nothing():
    assert failure.cause(["Traceback ... KeyError: 'x'"], "/w", 10 * 2**30) is None
    assert failure.cause([""], "/w", 4096).startswith("a write failed: the work volume (/w) is full")
    assert failure.cause(["Failed to save the checkpoint file /w/a.ckpt. Maybe don't have"], "/w", 2**30) == (
        "saving /w/a.ckpt failed (MindSpore: no permission to write, or no space)")
