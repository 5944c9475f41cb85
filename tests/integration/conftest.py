"""Fixtures of the integration tests: Kueue's controller on the local cluster,
and failing the real node's emulated NPUs."""
import os
import time
from pathlib import Path

import pytest
from kubernetes import client

from hack.cluster import local


@pytest.fixture(scope="session")
def kueue(kubeconfig):
    """Kueue running against the local cluster (hack/cluster/kueue.sh), with
    ClusterQueue npu-cluster-queue. Reused when already running; started
    otherwise and stopped at the end of the session (MATHTUNE_KEEP_CLUSTER=1
    keeps it). Fails, never skips, when its binary is not built."""
    given = os.environ.get("MATHTUNE_KUBECONFIG")
    # MATHTUNE_KUBECONFIG naming the local cluster itself is fine.
    if given and Path(given).resolve() != Path(local.KUBECONFIG).resolve():
        pytest.fail("the Kueue tests start Kueue on the local cluster; unset MATHTUNE_KUBECONFIG", pytrace=False)
    missing = local.kueue_missing()
    if missing:
        pytest.fail(f"Kueue is not built: run `make binaries` (missing: {missing})", pytrace=False)
    started = not local.kueue_running()
    local.kueue_up()
    yield
    if started and os.environ.get("MATHTUNE_KEEP_CLUSTER") != "1":
        local.kueue_down()


@pytest.fixture
def npu_failures(k8s_api):
    """Fails real-node NPUs the test names (`npu_failures("Ascend910-3")`) and
    always mends them, waiting until the kubelet has all of them back (the
    tests after need them)."""
    failed = []

    def fail(device: str) -> None:
        failed.append(device)
        local.set_npu_health(device, healthy=False)

    yield fail
    for device in failed:
        local.set_npu_health(device, healthy=True)
    core = client.CoreV1Api(k8s_api)
    end = time.monotonic() + 30
    while core.read_node(local.REAL_NODE).status.allocatable.get("huawei.com/Ascend910") != "8":
        assert time.monotonic() < end, "the real node's NPUs did not all come back healthy in 30s"
        time.sleep(0.5)
