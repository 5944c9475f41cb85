"""Shared pytest setup: markers, the real fixtures of ../shared, and the local cluster.

Markers
  integration  needs a Kubernetes API server (the local control plane, or the
               cluster named by MATHTUNE_KUBECONFIG)
  mindspore    runs real MindSpore on CPU (slower)
  e2e          the whole pipeline through the cluster
  faults       the operator under cluster faults (API server restart, kills, ...)

Nothing here skips silently: a test that needs something absent fails and
says what to run.
"""
import os
import uuid
from pathlib import Path

import pytest

from hack.cluster import local
from tests.waiting import create_test_namespace

REPO = Path(__file__).resolve().parent.parent
SHARED_FIXTURES = Path(os.environ.get("MATHTUNE_SHARED_FIXTURES", REPO.parent / "shared" / "fixtures"))
# hack/fixtures/llama3-tokenizer.sh (`make tokenizer`) puts it here.
LLAMA3_TOKENIZER = (Path(os.environ.get("MATHTUNE_CACHE", Path.home() / ".cache" / "mathtune"))
                    / "fixtures" / "tokenizers" / "llama3-tokenizer.json")


def pytest_configure(config):
    config.addinivalue_line("markers", "integration: needs a Kubernetes API server (the local control plane)")
    config.addinivalue_line("markers", "mindspore: runs real MindSpore on CPU")
    config.addinivalue_line("markers", "e2e: the whole pipeline through the cluster")
    config.addinivalue_line("markers", "faults: the operator under cluster faults (API server restart, kills, ...)")


def pytest_collection_modifyitems(config, items):
    """The e2e run last: `make test` runs the MindSpore tests beside the
    cluster's (hack/cluster/run-tests.sh), and the e2e run is the one
    cluster test that needs the CPU as much as they do."""
    items.sort(key=lambda item: item.get_closest_marker("e2e") is not None)


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    """../shared/fixtures: real data, logs and tokenizer nobody on this project wrote."""
    if not SHARED_FIXTURES.is_dir():
        pytest.fail(f"real fixtures not found at {SHARED_FIXTURES}: clone the project next to shared/ "
                    f"or set MATHTUNE_SHARED_FIXTURES", pytrace=False)
    return SHARED_FIXTURES


@pytest.fixture(scope="session")
def demo_inputs(shared_fixtures) -> Path:
    """What `mathtune-pipeline demo-data` makes for the CPU example (the
    example's <dataPath>/fixtures), made once, cached by what it follows from
    (tests/demo_inputs.py). Read-only: copy what you change."""
    from tests import demo_inputs as made_once

    return made_once.made(shared_fixtures)


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
