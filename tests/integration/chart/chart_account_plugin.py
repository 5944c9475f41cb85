"""pytest plugin: run the operator's own cluster tests with the operator
process holding a token of the chart's ServiceAccount instead of admin.

Loaded with `-p tests.integration.chart.chart_account_plugin` by
test_operator_as_chart_account.py. For every namespace an operator is
started in, it installs the chart (namespace scope, watching that namespace)
and hands the operator a kubeconfig with that ServiceAccount's token; the
tests themselves keep the admin kubeconfig to play their part. Nothing else
about the operator changes: same process, same flags, same code.
"""
import os
import uuid
from pathlib import Path

from hack.cluster import demo

_installed = []  # (release, namespace, kubeconfig)


def _chart_account_kubeconfig(admin_kubeconfig: Path, namespace: str, where: Path) -> Path:
    release = f"acct-{uuid.uuid4().hex[:6]}"
    # replicaCount 0: the chart's own operator pod would run on the real node
    # and compete with the operator process these tests start.
    demo.install_chart(admin_kubeconfig, release, namespace,
                       {"watch.scope": "namespace", "watch.namespaces": "{%s}" % namespace, "replicaCount": "0"})
    _installed.append((release, namespace, admin_kubeconfig))
    path = demo.service_account_kubeconfig(admin_kubeconfig, where / f"{release}.kubeconfig", release, namespace)
    marker = os.environ.get("MATHTUNE_CHART_ACCOUNT_MARKER")
    if marker:
        with open(marker, "a") as f:
            f.write(f"system:serviceaccount:{namespace}:{release}-mathtune-operator\n")
    return path


def pytest_configure(config):
    from tests.integration.operator import helpers

    original_init = helpers.Operator.__init__

    def init(self, kubeconfig, namespace, log_dir, *args, **kwargs):
        original_init(self, _chart_account_kubeconfig(Path(kubeconfig), namespace, Path(log_dir)),
                      namespace, log_dir, *args, **kwargs)

    helpers.Operator.__init__ = init


def pytest_collection_modifyitems(config, items):
    """Only the tests that start an operator say anything about its account:
    the rest (the API server's validation, say) would run twice for nothing.
    The fault tests (marker `faults`) call nothing the others do not (every
    operator here elects a leader on its Lease), so they run once, as admin."""
    starts_one = [item for item in items if "operator" in getattr(item, "fixturenames", ())
                  and not item.get_closest_marker("faults")]
    config.hook.pytest_deselected(items=[item for item in items if item not in starts_one])
    items[:] = starts_one


def pytest_unconfigure(config):
    for release, namespace, kubeconfig in _installed:
        try:
            demo.helm("uninstall", release, "--namespace", namespace, kubeconfig=kubeconfig)
        except Exception:  # the namespace may already be gone with it
            pass
