"""The Event recorder hands Events to its own thread: a reconcile pass
never waits on one. The API server here is a stand-in HTTP server on
loopback that answers only when the test lets it (a real API server cannot
be held mid-request on demand)."""
import http.server
import json
import threading

from kubernetes import client

from mathtune_operator.events import EventRecorder

RUN = {"metadata": {"namespace": "ns", "name": "r1", "uid": "u1", "resourceVersion": "7"}}


def test_a_pass_never_waits_for_its_event_to_be_posted():
    received, release = threading.Event(), threading.Event()

    class Held(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            received.set()
            release.wait(30)
            body = json.dumps({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "r1.abc"},
                               "involvedObject": {}}).encode()
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Held)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        api = client.ApiClient(client.Configuration(host=f"http://127.0.0.1:{server.server_address[1]}"))
        recorder = EventRecorder(api, request_timeout=3)
        recorder.post(RUN, "Normal", "StageStarted", "stage prepare: created Job r1-prepare")
        # post() returned with its request still unanswered (a synchronous
        # post would have waited here until its timeout, and given up).
        assert received.wait(10), "the Event was never posted"
        release.set()
        recorder.flush(timeout=10)
        assert [name for name, _ in recorder.posted.values()] == ["r1.abc"]
    finally:
        release.set()
        server.shutdown()
        server.server_close()
