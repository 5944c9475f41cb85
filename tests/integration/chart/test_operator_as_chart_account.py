"""The chart's RBAC is enough: the operator's own cluster tests that start an
operator pass with the operator process holding only the chart's
ServiceAccount token (see chart_account_plugin.py), and RBAC never refuses
the operator anything."""
import os
import re
import subprocess
import sys

import pytest

from hack.cluster import local

pytestmark = pytest.mark.integration

OPERATOR_TESTS = local.REPO / "tests" / "integration" / "operator"


def test_operator_integration_tests_pass_as_the_chart_account(kubeconfig, tmp_path):
    if not OPERATOR_TESTS.is_dir():
        pytest.fail(f"{OPERATOR_TESTS} is missing: nothing to run as the chart's account", pytrace=False)
    marker = tmp_path / "accounts"
    env = dict(os.environ, MATHTUNE_KUBECONFIG=str(kubeconfig), MATHTUNE_CHART_ACCOUNT_MARKER=str(marker))
    out = subprocess.run(
        [sys.executable, "-m", "pytest", str(OPERATOR_TESTS), "-p", "tests.integration.chart.chart_account_plugin",
         "-p", "no:cacheprovider", "-q", "-x", f"--basetemp={tmp_path / 'run'}"],
        cwd=local.REPO, env=env, capture_output=True, text=True, timeout=1500)
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-3000:]
    ran = re.search(r"(\d+) passed", out.stdout)
    assert ran and int(ran.group(1)) >= 10, f"too few operator tests ran as the chart's account: {out.stdout[-500:]}"
    accounts = marker.read_text().split()
    assert accounts and all(a.startswith("system:serviceaccount:") for a in accounts), \
        "the operator was never started with the chart's account"
    logs = "\n".join(p.read_text() for p in (tmp_path / "run").rglob("operator-*.log"))
    assert logs, "no operator log found"
    # RBAC's refusal reads 'User "..." cannot <verb> resource ...'; other 403s
    # (a ResourceQuota one of the tests sets up on purpose) are not RBAC's.
    denied = [line for line in logs.splitlines() if re.search(r'cannot \w+ resource', line)]
    assert not denied, denied[:5]
