"""Fixtures of the operator's cluster tests: the CRD applied once, a real
operator process per test, watching only the test's namespace."""
import pytest
from kubernetes import client

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
def operator(kubeconfig, namespace, crd, tmp_path):
    op = helpers.Operator(kubeconfig, namespace, tmp_path).start()
    yield op
    op.stop()
