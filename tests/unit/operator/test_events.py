"""The Event recorder hands Events to its sender threads: a reconcile pass
never waits on one. The API server here is a stand-in HTTP server on
loopback that answers only when the test lets it (a real API server cannot
be held mid-request on demand)."""
import contextlib
import http.server
import json
import threading
import time
import zlib
from typing import Callable, Iterator

from kubernetes import client

from mathtune_operator.events import EventRecorder

RUN = {"metadata": {"namespace": "ns", "name": "r1", "uid": "u1", "resourceVersion": "7"}}


@contextlib.contextmanager
def stand_in_api(on_post: Callable[[dict], None]) -> Iterator[client.ApiClient]:
    """An API server that hands each posted Event to on_post (which may
    hold it), then answers it created, named "<run>.abc"."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            event = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            on_post(event)
            body = json.dumps({"apiVersion": "v1", "kind": "Event", "involvedObject": {},
                               "metadata": {"name": f"{event['involvedObject']['name']}.abc"}}).encode()
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield client.ApiClient(client.Configuration(host=f"http://127.0.0.1:{server.server_address[1]}"))
    finally:
        server.shutdown()
        server.server_close()


def test_a_pass_never_waits_for_its_event_to_be_posted():
    received, release = threading.Event(), threading.Event()

    def hold(event):
        received.set()
        release.wait(30)

    try:
        with stand_in_api(hold) as api:
            recorder = EventRecorder(api, request_timeout=3)
            recorder.post(RUN, "Normal", "StageStarted", "stage prepare: created Job r1-prepare")
            # post() returned with its request still unanswered (a synchronous
            # post would have waited here until its timeout, and given up).
            assert received.wait(10), "the Event was never posted"
            release.set()
            recorder.flush(timeout=10)
            assert [name for shard in recorder.posted for name, _ in shard.values()] == ["r1.abc"]
    finally:
        release.set()


def test_one_runs_slow_event_holds_no_other_runs_events():
    """Events go out from several threads, each run's from one of them (in
    order, so its aggregation holds): at hundreds of runs one thread posted
    a stage's Event a minute late, and an operator stopping then lost the
    rest."""
    held_run, others = threading.Event(), []

    def hold_r1(event):
        run = event["involvedObject"]["name"]
        if run == "r1":
            held_run.wait(30)
        else:
            others.append(run)

    try:
        with stand_in_api(hold_r1) as api:
            recorder = EventRecorder(api, request_timeout=30)
            recorder.post(RUN, "Normal", "StageStarted", "stage prepare: created Job r1-prepare")
            runs = [f"r{i}" for i in range(2, 12)]
            for name in runs:
                recorder.post({"metadata": {**RUN["metadata"], "name": name, "uid": f"u-{name}"}}, "Normal",
                              "StageStarted", f"stage prepare: created Job {name}-prepare")
            # Runs that share r1's sender wait for it; the others go on. Which are which
            # follows from the recorder's sharding (crc32 of namespace/uid over its senders).
            sender_of = {name: zlib.crc32(f"ns/u-{name}".encode()) % len(recorder.pending) for name in runs}
            held_sender = zlib.crc32(b"ns/u1") % len(recorder.pending)
            free = sorted(name for name in runs if sender_of[name] != held_sender)
            assert free and len(free) < len(runs), "the runs must fall both on r1's sender and on others"
            deadline = time.monotonic() + 10
            while sorted(others) != free and time.monotonic() < deadline:
                time.sleep(0.05)
            assert sorted(others) == free, f"posted while r1's Event was held: {sorted(others)}, expected {free}"
            held_run.set()
            recorder.flush(timeout=10)
            assert sorted(others) == sorted(runs)
    finally:
        held_run.set()
