"""Why msrun failed, in a sentence the run's status can carry: without it the
stage says only "msrun exited with code 1" and the cause is in a worker log
on the volume. Pure."""
import re
from typing import Iterable, Optional

NO_SPACE = "No space left on device"
# MindSpore's own line when a save fails (mindspore/train/serialization.py):
# "Failed to save the checkpoint file <path>. Maybe don't have the permission
# to write files, or the disk space is insufficient and so on."
SAVE_FAILED = re.compile(r"Failed to save the checkpoint file (?P<path>\S+?)\.(?:\s|$)")
FULL_BELOW = 1 << 20  # free bytes under which the volume counts as full whatever the logs say


def cause(logs: Iterable[str], work: str, free_bytes: Optional[int]) -> Optional[str]:
    """The cause of a failed msrun found in its worker logs' text and the work
    volume's free space, or None when neither says anything known."""
    saved, no_space = None, False
    for text in logs:
        no_space = no_space or NO_SPACE in text
        found = SAVE_FAILED.search(text)
        if found and saved is None:
            saved = found.group("path")
    full = no_space or (free_bytes is not None and free_bytes < FULL_BELOW)
    if not full and saved is None:
        return None
    what = f"saving {saved} failed" if saved else "a write failed"
    if not full:
        return f"{what} (MindSpore: no permission to write, or no space)"
    free = "" if free_bytes is None else f", {free_bytes} bytes free now"
    return (f"{what}: the work volume ({work}) is full ({NO_SPACE}{free}); free space on it or raise "
            f"spec.storage.size. A retry resumes from the last complete save")
