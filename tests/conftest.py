"""Shared pytest setup: markers, the real fixtures (hack/fixtures/store.py), and the local cluster.

Markers
  integration  needs a Kubernetes API server (the local control plane, or the
               cluster named by MATHTUNE_KUBECONFIG)
  mindspore    runs real MindSpore on CPU (slower)
  e2e          the whole pipeline through the cluster
  faults       the operator under cluster faults (API server restart, kills, ...)

Nothing here skips silently: a test that needs something absent fails and
says what to run. The one exception is the real fixtures on a clone that has
none (`make fixtures` gets them): their tests do not run, and the session ends
with one banner that counts them. With MATHTUNE_REQUIRE_FIXTURES=1 (CI) they
fail instead.
"""
import os
import uuid
from pathlib import Path

import pytest

from hack.cluster import local
from hack.fixtures import store
from tests.waiting import create_test_namespace

REPO = Path(__file__).resolve().parent.parent
# `make tokenizer` (a prerequisite of `make test`) puts it here.
LLAMA3_TOKENIZER = store.path(store.TOKENIZER)
# The reason of every test left out for want of a fixture: the banner counts them.
FIXTURES_ABSENT = "real fixtures absent"
# run-tests.sh sets it to a file per session, and prints one banner for both.
FIXTURES_REPORT_ENV = "MATHTUNE_FIXTURES_REPORT"


def pytest_configure(config):
    config.addinivalue_line("markers", "integration: needs a Kubernetes API server (the local control plane)")
    config.addinivalue_line("markers", "mindspore: runs real MindSpore on CPU")
    config.addinivalue_line("markers", "e2e: the whole pipeline through the cluster")
    config.addinivalue_line("markers", "faults: the operator under cluster faults (API server restart, kills, ...)")
    config.addinivalue_line("markers", "chaos: the real node's faults under a real CPU run; `make chaos` only "
                                       "(hack/cluster/run-tests.sh leaves it out of `make test`)")


def pytest_collection_modifyitems(config, items):
    """The e2e run last: `make test` runs the MindSpore tests beside the
    cluster's (hack/cluster/run-tests.sh), and the e2e run is the one
    cluster test that needs the CPU as much as they do."""
    items.sort(key=lambda item: item.get_closest_marker("e2e") is not None)


def pytest_terminal_summary(terminalreporter):
    """The fixtures banner: how many tests did not run for want of them, and how to get them."""
    absent = sum(1 for report in terminalreporter.stats.get("skipped", [])
                 if FIXTURES_ABSENT in str(getattr(report, "longrepr", "")))
    report_to = os.environ.get(FIXTURES_REPORT_ENV)
    if report_to:
        Path(report_to).write_text(str(absent))
    elif absent:
        terminalreporter.write_line(store.banner(absent), red=True, bold=True)


@pytest.fixture(scope="session")
def real_fixtures() -> Path:
    """The folder of the real fixtures (hack/fixtures/store.py): data, logs and
    tokenizer nobody on this project wrote. Left out when absent, counted in
    the banner; failed when MATHTUNE_REQUIRE_FIXTURES=1."""
    absent = store.missing()
    if absent:
        message = f"{FIXTURES_ABSENT}: {', '.join(absent)} not under {store.ROOT}; run `{store.FETCH_COMMAND}`"
        if store.required():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return store.ROOT


@pytest.fixture
def moto_s3(monkeypatch):
    """A real S3-compatible server (moto's) on loopback, with the endpoint and test credentials in this
    process's environment as a stage pod has them; yields a client of it."""
    from moto.server import ThreadedMotoServer

    from mathtune_pipeline.data.sources import s3_client

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        monkeypatch.setenv("S3_ENDPOINT", f"http://{host}:{port}")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-key")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        yield s3_client()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def demo_inputs() -> Path:
    """What `mathtune-pipeline demo-data` makes for the CPU example (the
    example's <dataPath>/fixtures), made once, cached by what it follows from
    (tests/demo_inputs.py). Read-only: copy what you change."""
    from tests import demo_inputs as made_once

    return made_once.made()


@pytest.fixture(scope="session")
def kubeconfig() -> Path:
    """A running cluster's kubeconfig.

    MATHTUNE_KUBECONFIG names an existing cluster (kind on a laptop, say), used
    as is. Otherwise the local cluster (control plane, kwok's simulated nodes
    and the real node): reused when already running, started otherwise and
    then stopped at the end of the session (set MATHTUNE_KEEP_CLUSTER=1 to
    keep it).
    """
    given = os.environ.get("MATHTUNE_KUBECONFIG")
    if given:
        path = Path(given)
        if not path.exists():
            pytest.fail(f"MATHTUNE_KUBECONFIG={given} does not exist", pytrace=False)
        yield path
        return
    if local.healthy() and local.real_node_ready():
        # A cluster an earlier session left running may lack this checkout's
        # images (their tags are digests of their inputs): the node imports
        # what it lacks and leaves the rest alone.
        local.import_images()
        yield local.KUBECONFIG
        return
    missing = local.missing_binaries()
    if missing:
        pytest.fail("the local cluster is not built: run `make binaries` (missing: " + ", ".join(missing) + ")",
                    pytrace=False)
    local.up()
    try:
        yield local.KUBECONFIG
    finally:
        if os.environ.get("MATHTUNE_KEEP_CLUSTER") != "1":
            local.down()


@pytest.fixture(scope="session")
def k8s_api(kubeconfig):
    from kubernetes import config

    return config.new_client_from_config(config_file=str(kubeconfig))


@pytest.fixture
def namespace(k8s_api, request):
    """A fresh namespace per test, deleted afterwards (with everything in it)."""
    from kubernetes import client

    core = client.CoreV1Api(k8s_api)
    base = "".join(ch if ch.isalnum() else "-" for ch in request.node.name.lower())[:40].strip("-")
    name = f"t-{base}-{uuid.uuid4().hex[:5]}"
    create_test_namespace(core, name)
    yield name
    try:
        core.delete_namespace(name, propagation_policy="Background")
    except client.exceptions.ApiException:
        pass


@pytest.fixture
def http_root(tmp_path):
    """(directory, base URL) of a real HTTP server on loopback serving that
    directory: the http(s) sources and checkpoints are fetched from it."""
    import functools
    import http.server
    import threading

    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
