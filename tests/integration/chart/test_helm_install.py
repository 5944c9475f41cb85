"""`helm install` of the operator's chart on the real local control plane:
admitted under Pod Security "restricted", Deployment available, RBAC exactly
as declared, clean uninstall."""
import uuid

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from hack.cluster import demo
from tests.unit.chart import helm
from tests.unit.chart.test_rbac import GRANTED
from tests.waiting import wait_for as _wait

pytestmark = pytest.mark.integration




@pytest.fixture
def restricted_namespace(kubeconfig, namespace):
    """The test namespace, enforcing Pod Security "restricted" (real admission), labelled as the demo labels its own."""
    demo.restricted_namespace(kubeconfig, namespace)
    return namespace


@pytest.fixture
def release(kubeconfig, restricted_namespace):
    name = f"mt-{uuid.uuid4().hex[:6]}"
    out = helm.helm("install", name, str(helm.CHART), "--namespace", restricted_namespace,
                    "--kubeconfig", str(kubeconfig), "--set", "watch.scope=namespace", "--wait=false", check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    yield name, out.stdout
    helm.helm("uninstall", name, "--namespace", restricted_namespace, "--kubeconfig", str(kubeconfig), check=False)


def test_install_is_admitted_as_restricted_and_becomes_available(k8s_api, restricted_namespace, release):
    name, notes = release
    apps = client.AppsV1Api(k8s_api)
    dep_name = f"{name}-mathtune-operator"

    def available():
        dep = apps.read_namespaced_deployment_status(dep_name, restricted_namespace)
        return (dep.status.available_replicas or 0) == 1 and dep

    dep = _wait(available, what="deployment available")
    # Only the Lease holder reconciles, so a rolling update may overlap pods.
    assert dep.spec.strategy.type == "RollingUpdate"
    # The ReplicaSet's pod made it past Pod Security admission "restricted".
    pods = client.CoreV1Api(k8s_api).list_namespaced_pod(
        restricted_namespace, label_selector=f"app.kubernetes.io/instance={name}").items
    assert len(pods) == 1 and pods[0].status.phase == "Running"
    # It leads: the chart's Role let it take the Lease in its namespace.
    leases = client.CoordinationV1Api(k8s_api)

    def holder():
        try:
            return leases.read_namespaced_lease(dep_name, restricted_namespace).spec.holder_identity
        except ApiException:
            return None
    assert _wait(lambda: holder() == pods[0].metadata.name, what="the operator pod holding the Lease")
    assert "kubectl get mft -w" in notes and f"Watching: {restricted_namespace}" in notes


def test_pod_security_admission_is_really_enforcing(k8s_api, restricted_namespace):
    """The check above means something: a privileged-ish pod is refused here."""
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(k8s_api).create_namespaced_pod(restricted_namespace, {
            "metadata": {"name": "root-pod"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    assert err.value.status == 403 and "restricted" in err.value.body


def _allowed(auth, user, namespace, group, resource, verb, subresource=""):
    attrs = {"verb": verb, "group": group, "resource": resource}
    if subresource:
        attrs["subresource"] = subresource
    if namespace:
        attrs["namespace"] = namespace
    review = auth.create_subject_access_review({"spec": {"user": user, "resourceAttributes": attrs}})
    return review.status.allowed


def test_service_account_has_exactly_the_declared_permissions(k8s_api, restricted_namespace, release):
    name, _ = release
    auth = client.AuthorizationV1Api(k8s_api)
    user = f"system:serviceaccount:{restricted_namespace}:{name}-mathtune-operator"
    for (group, resource, verb), (_, why) in GRANTED.items():
        resource, _, sub = resource.partition("/")
        ns = None if resource in ("customresourcedefinitions", "namespaces") else \
            "kube-system" if why.startswith("kube-system only") else restricted_namespace
        assert _allowed(auth, user, ns, group, resource, verb, sub), f"{verb} {resource}/{sub} ({why}) not granted"
    # Namespace mode: nothing on runs outside the watched namespace.
    assert not _allowed(auth, user, "default", "batch", "jobs", "create")
    assert not _allowed(auth, user, "default", "mathtune.dev", "mathfinetunes", "list")
    for group, resource, verb in [("", "secrets", "get"), ("", "pods", "delete"), ("", "pods", "create"),
                                  ("", "pods", "get"), ("", "configmaps", "delete"), ("batch", "jobs", "update"),
                                  ("mathtune.dev", "mathfinetunes", "delete"), ("", "nodes", "list"),
                                  ("rbac.authorization.k8s.io", "roles", "create"), ("", "pods", "exec"),
                                  ("", "configmaps", "list"), ("", "configmaps", "watch")]:
        assert not _allowed(auth, user, restricted_namespace, group, resource, verb), f"{verb} {resource} granted"
    # In kube-system: reading ConfigMaps (the nodes' NPU health), nothing else.
    for group, resource, verb in [("", "configmaps", "create"), ("", "configmaps", "update"), ("", "secrets", "get"),
                                  ("", "pods", "list")]:
        assert not _allowed(auth, user, "kube-system", group, resource, verb), f"{verb} {resource} in kube-system"
