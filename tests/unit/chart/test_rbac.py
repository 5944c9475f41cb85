"""Least privilege, shown: every verb the chart grants, with what needs it.

GRANTED is the whole list. The tests fail when the chart grants something
not listed here (say why, or drop it), when something listed is no longer
granted, and when the operator's code calls the Kubernetes API in a way no
grant covers (tests/integration/chart proves the same against a real API
server, and the operator's integration tests run as the chart's account).
"""
import ast
import re
from pathlib import Path

import pytest

from tests.unit.chart import helm

OPERATOR_SRC = helm.local.REPO / "operator" / "mathtune_operator"

# (API group, resource[/subresource], verb): who needs it.
GRANTED = {
    ("apiextensions.k8s.io", "customresourcedefinitions", "get"): "kopf: resolve the MathFinetune resource at start-up",
    ("apiextensions.k8s.io", "customresourcedefinitions", "list"): "kopf: scan resources to serve",
    ("apiextensions.k8s.io", "customresourcedefinitions", "watch"): "kopf: notice the CRD appearing after the operator",
    ("mathtune.dev", "mathfinetunes", "get"): "operator: read a run when a child Job changes",
    ("mathtune.dev", "mathfinetunes", "list"): "kopf: initial listing of runs",
    ("mathtune.dev", "mathfinetunes", "watch"): "kopf: watch runs",
    ("mathtune.dev", "mathfinetunes", "patch"): "kopf: handler progress annotations and finalizers; operator: progress annotations",
    ("mathtune.dev", "mathfinetunes/status", "get"): "operator: read status before patching only what changed",
    ("mathtune.dev", "mathfinetunes/status", "patch"): "operator: conditions, stage table, progress, results",
    ("batch", "jobs", "get"): "operator: find a stage's Job by its deterministic name",
    ("batch", "jobs", "list"): "operator/kopf: a run's Jobs by label",
    ("batch", "jobs", "watch"): "kopf: react to stage Jobs finishing",
    ("batch", "jobs", "create"): "operator: one Job per stage",
    ("batch", "jobs", "delete"): "operator: TTL cleanup of a finished run's Jobs",
    ("", "pods", "get"): "operator: a stage pod's termination message (the stage result)",
    ("", "pods", "list"): "operator: a Job's pods, Pending reasons",
    ("", "pods", "watch"): "kopf: notice stage pods Pending/terminated",
    ("", "pods/log", "get"): "operator: newest progress line of the training pod",
    ("", "configmaps", "get"): "operator: the run's spec ConfigMap exists?",
    ("", "configmaps", "create"): "operator: the run's spec ConfigMap, mounted in every stage pod",
    ("", "configmaps", "patch"): "operator: refresh the spec ConfigMap when a run is resumed",
    ("", "persistentvolumeclaims", "get"): "operator: the run's work volume exists?",
    ("", "persistentvolumeclaims", "create"): "operator: the run's work volume when spec.storage.pvcName is empty",
    ("", "services", "get"): "operator: the headless Service for multi-node training exists?",
    ("", "services", "create"): "operator: headless Service, msrun rendezvous across nodes",
    ("", "events", "create"): "kopf/operator: Events on runs (kubectl describe mft)",
}


def _rules_of(objs, kinds):
    out = set()
    for obj in objs:
        if obj["kind"] in kinds:
            for rule in obj["rules"]:
                for group in rule["apiGroups"]:
                    for resource in rule["resources"]:
                        for verb in rule["verbs"]:
                            assert verb != "*" and resource != "*" and group != "*", "no wildcards"
                            out.add((group, resource, verb))
    return out


@pytest.mark.parametrize("values", [{}, {"watch.scope": "namespace", "watch.namespaces": "{a,b}"}],
                         ids=["cluster-scope", "namespace-scope"])
def test_chart_grants_exactly_the_declared_verbs(values):
    objs = helm.render(values)
    granted = _rules_of(objs, {"ClusterRole", "Role"})
    undeclared = granted - set(GRANTED)
    missing = set(GRANTED) - granted
    assert not undeclared, f"granted without a stated need: {sorted(undeclared)}"
    assert not missing, f"declared but not granted: {sorted(missing)}"


def test_only_crd_reads_are_cluster_wide_in_namespace_scope():
    objs = helm.render({"watch.scope": "namespace"})
    cluster = _rules_of(objs, {"ClusterRole"})
    assert {g for g, _, _ in cluster} == {"apiextensions.k8s.io"}
    assert {v for _, _, v in cluster} == {"get", "list", "watch"}


# -- what the operator's code calls --------------------------------------------------

_KIND_TO_RESOURCE = {
    "job": ("batch", "jobs"), "pod": ("", "pods"), "config_map": ("", "configmaps"),
    "persistent_volume_claim": ("", "persistentvolumeclaims"), "service": ("", "services"),
    "event": ("", "events"), "custom_resource_definition": ("apiextensions.k8s.io", "customresourcedefinitions"),
}
_VERB = {"create": "create", "read": "get", "list": "list", "patch": "patch", "replace": "update",
         "delete": "delete", "delete_collection": "deletecollection"}
_CALL = re.compile(r"^(create|read|list|patch|replace|delete_collection|delete)_(?:namespaced_)?"
                   r"([a-z_]+?)(_status|_log)?(?:_for_all_namespaces)?$")


def operator_api_calls():
    """(group, resource, verb, where) for each Kubernetes client call in the operator."""
    if not OPERATOR_SRC.is_dir():
        pytest.fail(f"{OPERATOR_SRC} not found: the operator package must exist to check its RBAC", pytrace=False)
    calls = []
    for path in sorted(OPERATOR_SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                m = _CALL.match(node.func.attr)
                if not m:
                    continue
                verb, kind, sub = m.groups()
                where = f"{path.relative_to(helm.local.REPO)}:{node.lineno}"
                if kind in ("custom_object", "cluster_custom_object"):
                    group, resource = "mathtune.dev", "mathfinetunes"
                elif kind in _KIND_TO_RESOURCE:
                    group, resource = _KIND_TO_RESOURCE[kind]
                else:
                    continue  # not a Kubernetes API method (e.g. a local helper)
                if sub == "_status":
                    resource += "/status"
                elif sub == "_log":
                    resource += "/log"
                calls.append((group, resource, _VERB[verb], where))
    return calls


def test_every_api_call_of_the_operator_is_granted():
    calls = operator_api_calls()
    assert calls, "found no Kubernetes API call in the operator: is the scan still right?"
    for group, resource, verb, where in calls:
        assert (group, resource, verb) in GRANTED, f"{where}: {verb} {group}/{resource} is not granted"
