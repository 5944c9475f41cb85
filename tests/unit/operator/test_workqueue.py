"""The work queue's promises, which the controller's correctness rests on:
one pass per run at a time, no run queued twice, delayed wake-ups."""
import threading

from mathtune_operator.workqueue import WorkQueue


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_a_key_is_queued_once_however_often_it_is_added():
    q = WorkQueue()
    for _ in range(5):
        q.add("a")
    q.add("b")
    assert len(q) == 2
    assert [q.get(timeout=0), q.get(timeout=0), q.get(timeout=0)] == ["a", "b", None]


def test_a_key_added_while_held_is_handed_out_again_only_after_done():
    q = WorkQueue()
    q.add("a")
    assert q.get(timeout=0) == "a"
    q.add("a")  # a watch event while its pass runs
    assert q.get(timeout=0) is None  # never two passes of one run at once
    q.done("a")
    assert q.get(timeout=0) == "a"  # the pass may have read state from before the event


def test_delayed_keys_come_due_at_the_earliest_time_asked():
    clock = Clock()
    q = WorkQueue(clock)
    q.add_after("a", 30)
    q.add_after("a", 10)
    q.add_after("a", 50)
    assert q.get(timeout=0) is None
    clock.now += 10
    assert q.get(timeout=0) == "a"
    q.done("a")
    clock.now += 100
    assert q.get(timeout=0) is None  # the later bookings were superseded, not kept


def test_forgotten_keys_do_not_come_due():
    clock = Clock()
    q = WorkQueue(clock)
    q.add_after("gone", 5)
    q.forget("gone")
    clock.now += 10
    assert q.get(timeout=0) is None


def test_waiting_work_is_measured_for_liveness():
    clock = Clock()
    q = WorkQueue(clock)
    assert q.oldest_wait() == 0
    q.add("a")
    clock.now += 42
    assert q.oldest_wait() == 42
    q.get(timeout=0)
    assert q.oldest_wait() == 0


def test_a_blocked_worker_is_woken_by_add_and_by_close():
    q = WorkQueue()
    got = []
    worker = threading.Thread(target=lambda: got.append(q.get(timeout=10)))
    worker.start()
    q.add("a")
    worker.join(5)
    assert got == ["a"]
    worker = threading.Thread(target=lambda: got.append(q.get()))
    worker.start()
    q.close()
    worker.join(5)
    assert got == ["a", None] and not worker.is_alive()


def test_urgent_keys_go_before_the_others_but_for_their_reserved_share():
    q = WorkQueue(reserved=1)
    q.add("new-1")
    q.add("new-2")
    q.add("changed", urgent=True)
    assert q.get(timeout=0) == "new-1"  # one worker may always serve the others
    assert q.get(timeout=0) == "changed"  # that share in use: urgent first
    assert q.get(timeout=0) == "new-2"  # nothing urgent: any worker takes the others
    q.done("new-1")
    q.add("new-3")
    q.add("changed-2", urgent=True)
    assert q.get(timeout=0) == "changed-2"  # new-2 holds the share


def test_a_waiting_key_made_urgent_moves_up_once():
    q = WorkQueue(reserved=0)
    q.add("a")
    q.add("b")
    q.add("b", urgent=True)
    assert len(q) == 2
    assert [q.get(timeout=0), q.get(timeout=0), q.get(timeout=0)] == ["b", "a", None]


def test_a_key_made_urgent_while_held_comes_back_urgent():
    q = WorkQueue(reserved=0)
    q.add("a")
    assert q.get(timeout=0) == "a"
    q.add("a", urgent=True)  # its Job changed during the pass
    q.add("b")
    q.done("a")
    assert q.get(timeout=0) == "a"
