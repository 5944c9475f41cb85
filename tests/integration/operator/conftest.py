"""Fixtures of the operator's cluster tests: the CRD applied once, a real
operator process per test, watching only the test's namespace with the
chart's ServiceAccount token."""
import re
import uuid

import pytest
from kubernetes import client

from hack.cluster import demo

from . import helpers


@pytest.fixture(scope="session")
def crd(kubeconfig):
    helpers.apply_crd(kubeconfig)
    return helpers.CRD


@pytest.fixture
def apis(k8s_api):
    return {"core": client.CoreV1Api(k8s_api), "batch": client.BatchV1Api(k8s_api),
            "custom": client.CustomObjectsApi(k8s_api)}


@pytest.fixture
def volumes(apis):
    """PVs this test made (cluster-scoped, so not removed with the namespace)."""
    made = []
    yield made
    for name in made:
        try:
            apis["core"].delete_persistent_volume(name)
        except client.exceptions.ApiException:
            pass


@pytest.fixture
def drained(namespace, apis):
    """Deletes the test's namespace and plays the kubelet for its pods.

    Stage pods carry the Job controller's tracking finalizer, which a real
    kubelet's pod shutdown lets the Job controller remove. kwok leaves a
    deleted Running pod Running with its finalizer, and with the API server's
    ordered namespace deletion (pods first) the namespace then never goes:
    its Running pods would keep holding NPUs of the simulated nodes for the
    rest of the session. So: delete the namespace (no new pod can start in
    it from then on), then drop its pods' finalizers and delete them at once,
    until it has none. The namespace itself goes in the background: waiting
    for the namespace controller cost every test about ten seconds.
    """
    yield namespace
    core = apis["core"]
    try:
        core.delete_namespace(namespace, propagation_policy="Background")
    except client.exceptions.ApiException:
        return

    def no_pods():
        try:
            pods = core.list_namespaced_pod(namespace).items
        except client.exceptions.ApiException:
            return True
        for pod in pods:
            try:
                if pod.metadata.finalizers:
                    core.patch_namespaced_pod(pod.metadata.name, namespace, {"metadata": {"finalizers": None}})
                core.delete_namespaced_pod(pod.metadata.name, namespace, grace_period_seconds=0)
            except client.exceptions.ApiException:
                pass
        return not pods
    helpers.wait(no_pods, 120, f"the pods of namespace {namespace} deleted", every=0.5)


@pytest.fixture
def chart_account(kubeconfig, drained, namespace, crd, tmp_path):
    """A kubeconfig holding a token of the chart's ServiceAccount, the chart
    installed in the test's namespace (namespace scope, watching it): the
    operator these tests start has the chart's RBAC and nothing more, as in
    a real install. replicaCount 0: the chart's own operator pod would run
    on the real node and compete with the process the test starts."""
    release = f"acct-{uuid.uuid4().hex[:6]}"
    demo.install_chart(kubeconfig, release, namespace,
                       {"watch.scope": "namespace", "watch.namespaces": "{%s}" % namespace, "replicaCount": "0"},
                       refresh_crd=False)
    yield demo.service_account_kubeconfig(kubeconfig, tmp_path / f"{release}.kubeconfig", release, namespace)
    # Its ClusterRole and binding are cluster-scoped: they outlive the namespace.
    demo.helm("uninstall", release, "--namespace", namespace, kubeconfig=kubeconfig)


@pytest.fixture
def operator(chart_account, namespace, tmp_path):
    op = helpers.Operator(chart_account, namespace, tmp_path).start()
    yield op
    op.stop()
    # RBAC's refusal reads 'User "..." cannot <verb> resource ...'; other 403s
    # (a ResourceQuota one of the tests sets up on purpose) are not RBAC's.
    denied = [line for line in op.logs().splitlines() if re.search(r"cannot \w+ resource", line)]
    assert not denied, f"the chart's RBAC refused the operator: {denied[:5]}"


@pytest.fixture
def admin_operator(kubeconfig, drained, namespace, crd, tmp_path):
    """An operator holding the admin kubeconfig, for the API server restart:
    a restarted API server answers before its RBAC caches are filled, and
    for some seconds refuses service accounts what RBAC grants them (403,
    which the operator and kopf retry). That test is about the restart."""
    op = helpers.Operator(kubeconfig, namespace, tmp_path).start()
    yield op
    op.stop()
