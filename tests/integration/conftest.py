"""Fixtures of the integration tests: Kueue's controller on the local cluster."""
import os
from pathlib import Path

import pytest

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
