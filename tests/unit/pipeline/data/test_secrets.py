"""Secrets stay secret: S3 credentials in the environment, and a token in a
source's URI (a presigned URL's signature, a password in its user part), never
reach what a stage publishes: its stdout and stderr (the pod's log), its
result (status, Events), or any file it leaves on the volume (manifests, the
report, the model card). Each case plants a recognisable canary, runs the
stage as its Job does (a fresh process), and greps everything for it."""
import http.server
import os
import subprocess
import sys
import threading

import pytest
import yaml
from tests.specs import whole

CANARY = "canary7f3e"
ENV_SECRETS = {"AWS_ACCESS_KEY_ID": f"AKIA{CANARY.upper()}", "AWS_SECRET_ACCESS_KEY": f"{CANARY}-secret-key",
               "AWS_SESSION_TOKEN": f"{CANARY}-session-token"}


@pytest.fixture
def servers(contest_200_path):
    """moto's S3 on loopback, and an HTTP server that serves the contest rows to a request carrying
    the right signature and refuses every other with 403, as a presigned URL's host does."""
    from moto.server import ThreadedMotoServer

    s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    s3.start()
    body = contest_200_path.read_bytes()

    class Signed(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            ok = f"X-Amz-Signature={CANARY}-good" in self.path
            self.send_response(200 if ok else 403)
            self.end_headers()
            if ok:
                self.wfile.write(body)

        def log_message(self, *args):
            pass

    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Signed)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    host, port = s3.get_host_and_port()
    yield f"http://{host}:{port}", f"http://127.0.0.1:{web.server_address[1]}", body
    web.shutdown()
    s3.stop()


def _stage(tmp_path, name, data, env, stage="prepare"):
    """(everything the stage printed and wrote, its exit code) for a run whose spec has `data`."""
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(yaml.safe_dump({"apiVersion": "mathtune.dev/v1alpha1", "kind": "MathFinetune",
                                    "metadata": {"name": name},
                                    "spec": whole({"data": data, "storage": {"dataPath": str(tmp_path)}})}))
    run_dir, result = tmp_path / name, tmp_path / f"{name}.result.json"
    proc = subprocess.run([sys.executable, "-m", "mathtune_pipeline.cli", stage, "--spec", str(spec), "--run-dir",
                           str(run_dir), "--result-file", str(result)], env=env, capture_output=True, text=True,
                          timeout=300)
    published = [proc.stdout, proc.stderr, result.read_text() if result.exists() else ""]
    for path in run_dir.rglob("*") if run_dir.exists() else []:
        if path.is_file() and path.name != "source.json":
            published.append(path.read_bytes().decode("utf-8", errors="replace"))
    return "\n".join(published), proc.returncode


def test_no_published_output_holds_a_credential_or_a_token(tmp_path, servers):
    s3, web, rows = servers
    env = {**os.environ, **ENV_SECRETS, "S3_ENDPOINT": s3, "AWS_DEFAULT_REGION": "us-east-1"}
    from mathtune_pipeline.data.sources import s3_client

    os.environ.update(ENV_SECRETS)
    os.environ["S3_ENDPOINT"] = s3
    try:
        client = s3_client()
        client.create_bucket(Bucket="rows")
        client.put_object(Bucket="rows", Key="train.json", Body=rows)
    finally:
        for key in [*ENV_SECRETS, "S3_ENDPOINT"]:
            os.environ.pop(key, None)
    cases = {
        "s3-ok": ({"source": {"uri": "s3://rows/train.json"}}, 0),
        "s3-absent": ({"source": {"uri": "s3://rows/absent.json"}}, 2),
        "s3-no-bucket": ({"source": {"uri": "s3://nobucket/train.json"}}, 2),
        "signed-ok": ({"source": {"uri": f"{web}/train.json?X-Amz-Signature={CANARY}-good"}}, 0),
        "signed-refused": ({"source": {"uri": f"{web}/train.json?X-Amz-Signature={CANARY}-expired"}}, 2),
        "password-in-uri": ({"source": {"uri": f"http://reader:{CANARY}pw@127.0.0.1:9/train.json"}}, None),
    }
    for name, (data, want) in cases.items():
        published, code = _stage(tmp_path, name, data, env)
        assert want is None or code == want, (name, code, published[-2000:])
        assert CANARY not in published and CANARY.upper() not in published, \
            f"{name}: the canary reached the stage's output: " + \
            published[max(0, published.find(CANARY) - 300):published.find(CANARY) + 100]


def test_a_uri_is_shown_without_its_secrets():
    from mathtune_pipeline.data.sources import shown

    assert shown("https://reader:pw@host:8443/d/train.json?X-Amz-Signature=abc&X-Amz-Credential=k") == \
        "https://reader:***@host:8443/d/train.json?<query hidden>"
    assert shown("s3://bucket/key.json") == "s3://bucket/key.json"
    assert shown("/data/fixtures/train.json") == "/data/fixtures/train.json"
