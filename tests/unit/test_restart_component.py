"""Restarting a control-plane process twice in one test session: the second
kill must not wait forever on the first restart's child, which stays a
zombie (its /proc entry does not go away) until its parent reaps it."""
import os
import signal
import subprocess
import time

from hack.cluster import local


def test_a_killed_child_of_ours_is_not_taken_for_alive():
    child = subprocess.Popen(["sleep", "60"], start_new_session=True)
    assert local._alive(child.pid)
    os.kill(child.pid, signal.SIGKILL)
    # Unreaped, it is a zombie: /proc still lists it (what made the wait hang).
    deadline = time.monotonic() + 10
    while open(f"/proc/{child.pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline, "the killed child never became a zombie"
        time.sleep(0.05)
    assert not local._alive(child.pid)
    assert not os.path.exists(f"/proc/{child.pid}"), "_alive reaps our own child"


def test_a_process_that_is_not_ours_is_alive_until_it_ends():
    assert local._alive(1)
    assert not local._alive(2**22 + 12345)  # no such pid
