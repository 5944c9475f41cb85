"""Least privilege, shown: every verb the chart grants, with what needs it.

GRANTED is the whole list. The tests fail when the chart grants something
not listed here (say why, or drop it), when something listed is no longer
granted, and when the operator's code calls the Kubernetes API in a way no
grant covers (tests/integration/chart proves the same against a real API
server, and the operator's integration tests run as the chart's account).
"""
import ast
import re

import pytest

from mathtune_operator import names as operator_names
from tests.unit.chart import helm

OPERATOR_SRC = helm.local.REPO / "operator" / "mathtune_operator"
# kubectl mathtune (the plugin) runs on a person's machine with their own credentials, never with the
# operator's ServiceAccount: its calls are not the chart's to grant.
PLUGIN_SRC = OPERATOR_SRC / "plugin"


def operator_sources():
    return sorted(p for p in OPERATOR_SRC.rglob("*.py") if PLUGIN_SRC not in p.parents)

# (API group, resource[/subresource], verb): (who needs it, why). "operator"
# entries must match a call in the operator's code (checked below); "kopf"
# entries are what the framework does on the operator's behalf.
GRANTED = {
    ("apiextensions.k8s.io", "customresourcedefinitions", "list"): ("kopf", "discover the MathFinetune resource"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "watch"): ("kopf", "notice the CRD appear or change"),
    ("", "namespaces", "list"): ("kopf", "namespace scope only: match its namespaces against the cluster's"),
    ("", "namespaces", "watch"): ("kopf", "namespace scope only: notice a watched namespace appear"),
    ("mathtune.dev", "mathfinetunes", "list"): ("kopf", "initial listing of runs"),
    ("mathtune.dev", "mathfinetunes", "watch"): ("kopf", "watch runs"),
    ("mathtune.dev", "mathfinetunes", "get"): ("operator", "read the run at the start of each reconcile pass"),
    ("mathtune.dev", "mathfinetunes/status", "patch"): ("operator", "conditions, stage table, progress, results"),
    ("mathtune.dev", "mathfinetunes", "create"): ("operator", "a sweep's trials are MathFinetunes it makes"),
    ("mathtune.dev", "mathfinetunes", "patch"): ("operator", "early stopping suspends a pruned trial's run"),
    ("mathtune.dev", "mathfinetunesweeps", "list"): ("kopf", "initial listing of sweeps"),
    ("mathtune.dev", "mathfinetunesweeps", "watch"): ("kopf", "watch sweeps"),
    ("mathtune.dev", "mathfinetunesweeps", "get"): ("operator", "read the sweep at the start of each pass"),
    ("mathtune.dev", "mathfinetunesweeps/status", "patch"): ("operator", "trials, best, leaderboard, counts"),
    ("mathtune.dev", "mathfinetunesweeps/finalizers", "update"): (
        "admission", "trials' blockOwnerDeletion owner references (OwnerReferencesPermissionEnforcement)"),
    ("mathtune.dev", "mathfinetunes/finalizers", "update"): (
        "admission", "children's blockOwnerDeletion owner references (OwnerReferencesPermissionEnforcement)"),
    ("", "events", "create"): ("operator", "Events on runs (kopf also posts its handler errors)"),
    ("", "events", "patch"): ("operator", "a repeated Event bumps its count instead of adding another"),
    ("batch", "jobs", "watch"): ("informer", "a stage Job's changes wake its run (label-selected watch)"),
    ("", "pods", "watch"): ("informer", "a stage pod's changes wake its run (label-selected watch)"),
    ("coordination.k8s.io", "leases", "get"): ("operator", "leader election: read the Lease"),
    ("coordination.k8s.io", "leases", "create"): ("operator", "leader election: the first replica makes the Lease"),
    ("coordination.k8s.io", "leases", "update"): ("operator", "leader election: take over or renew the Lease"),
    ("batch", "jobs", "list"): ("operator", "the informer's list of stage Jobs; a run's Jobs, for TTL cleanup"),
    ("batch", "jobs", "create"): ("operator", "one Job per stage"),
    ("batch", "jobs", "patch"): ("operator", "suspend and resume the current stage's Job"),
    ("batch", "jobs", "delete"): ("operator", "TTL cleanup; a Job whose result was lost with its pod"),
    ("", "pods", "list"): ("operator", "a Job's pods: termination message (stage result), Pending reasons"),
    ("", "pods/log", "get"): ("operator", "progress lines of the running stage pod"),
    ("", "configmaps", "create"): ("operator", "the run's spec ConfigMap, mounted in every stage pod"),
    ("", "configmaps", "get"): ("operator", "its name taken: ours, or an earlier run's not yet collected?"),
    ("", "configmaps", "list"): ("operator", "kube-system only: the informer's list of the nodes' device-info "
                                             "ConfigMaps (NPU faults)"),
    ("", "configmaps", "watch"): ("informer", "kube-system only: a node's NPU health changes wake the runs "
                                              "training there"),
    ("", "persistentvolumeclaims", "create"): ("operator", "the run's work volume when spec.storage.pvcName is empty"),
    ("", "services", "create"): ("operator", "headless Service for multi-node training"),
    ("", "services", "get"): ("operator", "its name taken: ours, or an earlier run's not yet collected?"),
    ("scheduling.volcano.sh", "podgroups", "create"): (
        "operator", "multi-node training under Volcano: one gang of every rank"),
    ("kueue.x-k8s.io", "workloads", "list"): (
        "operator", "spec.scheduling.localQueue: why Kueue has not admitted a stage's Job (its Workload)"),
    ("kueue.x-k8s.io", "workloads", "patch"): (
        "operator", "spec.scheduling.localQueue: runPolicy.suspend (de)activates the stage's Workload"),
    ("scheduling.volcano.sh", "podgroups", "get"): (
        "operator", "its name taken: ours, or an earlier run's not yet collected?"),
}
# Granted only when watching named namespaces (watch.scope=namespace).
NAMESPACE_SCOPE_ONLY = {("", "namespaces", "list"), ("", "namespaces", "watch")}


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
    declared = set(GRANTED) if values else set(GRANTED) - NAMESPACE_SCOPE_ONLY
    undeclared = granted - declared
    missing = declared - granted
    assert not undeclared, f"granted without a stated need: {sorted(undeclared)}"
    assert not missing, f"declared but not granted: {sorted(missing)}"


def test_owner_references_that_block_deletion_are_allowed():
    """Clusters that enforce owner-reference permissions (OpenShift) refuse a
    child with blockOwnerDeletion: true unless its creator may update the
    owner's finalizers: without the grant every Job creation gets 403 there."""
    from mathtune_operator import builders
    from mathtune_operator.resource import Run
    from tests.specs import whole

    ref = builders.owner_reference(Run.of({"metadata": {"name": "r", "uid": "u"}, "spec": whole({})}))
    assert ref["blockOwnerDeletion"] is True
    for values in ({}, {"watch.scope": "namespace"}):
        assert ("mathtune.dev", "mathfinetunes/finalizers", "update") in _rules_of(
            helm.render(values), {"ClusterRole", "Role"})


def test_only_crd_and_namespace_reads_are_cluster_wide_in_namespace_scope():
    objs = helm.render({"watch.scope": "namespace"})
    cluster = _rules_of(objs, {"ClusterRole"})
    assert {(g, r) for g, r, _ in cluster} == {("apiextensions.k8s.io", "customresourcedefinitions"),
                                                ("", "namespaces")}
    assert {v for _, _, v in cluster} == {"list", "watch"}


# -- what the operator's code calls --------------------------------------------------

_KIND_TO_RESOURCE = {
    "job": ("batch", "jobs"), "pod": ("", "pods"), "config_map": ("", "configmaps"),
    "persistent_volume_claim": ("", "persistentvolumeclaims"), "service": ("", "services"),
    "event": ("", "events"), "lease": ("coordination.k8s.io", "leases"),
    "custom_resource_definition": ("apiextensions.k8s.io", "customresourcedefinitions"),
}
# Custom resources the operator touches, by plural (a custom-object call
# whose plural is not a string literal is taken for the MathFinetune's).
_CUSTOM_GROUP = {"mathfinetunes": "mathtune.dev", "mathfinetunesweeps": "mathtune.dev",
                 "podgroups": "scheduling.volcano.sh",
                 "workloads": "kueue.x-k8s.io"}
_VERB = {"create": "create", "read": "get", "get": "get", "list": "list", "patch": "patch", "replace": "update",
         "delete": "delete", "delete_collection": "deletecollection"}
_CALL = re.compile(r"^(create|read|get|list|patch|replace|delete_collection|delete)_(?:namespaced_)?"
                   r"([a-z_]+?)(_status|_log)?(?:_for_all_namespaces)?$")


def operator_api_calls():
    """(group, resource, verb, where) for each Kubernetes client call in the operator."""
    if not OPERATOR_SRC.is_dir():
        pytest.fail(f"{OPERATOR_SRC} not found: the operator package must exist to check its RBAC", pytrace=False)
    calls = []
    for path in operator_sources():
        tree = ast.parse(path.read_text(), str(path))
        # A custom-object call names its resource by its plural argument:
        # map each such call's method attribute to that plural.
        plurals = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and len(node.args) > 3:
                plural = node.args[3]
                if isinstance(plural, ast.Constant) and isinstance(plural.value, str):
                    plurals[id(node.func)] = plural.value
                elif isinstance(plural, ast.Attribute) and isinstance(plural.value, ast.Name) and \
                        plural.value.id == "names":
                    plurals[id(node.func)] = getattr(operator_names, plural.attr)  # names.SWEEP_PLURAL
        for node in ast.walk(tree):
            # Attributes, not only calls: a bound method kept in a table counts.
            if isinstance(node, ast.Attribute):
                m = _CALL.match(node.attr)
                if not m:
                    continue
                verb, kind, sub = m.groups()
                where = f"{path.relative_to(helm.local.REPO)}:{node.lineno}"
                if kind in ("custom_object", "cluster_custom_object"):
                    resource = plurals.get(id(node), "mathfinetunes")
                    group = _CUSTOM_GROUP[resource]
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


def test_every_operator_grant_is_used_by_the_operator():
    """Minimal: a grant said to be for the operator's own code must match a call in it."""
    called = {c[:3] for c in operator_api_calls()}
    unused = [(k, why) for k, (who, why) in GRANTED.items() if who == "operator" and k not in called]
    assert not unused, f"granted for the operator but never called: {unused}"


def test_kopf_grants_match_how_the_operator_uses_kopf():
    """kopf's needs follow from how the operator uses it: standalone (no
    peering resources) and only watching events of runs (on.event needs no
    finalizer and no progress annotations, hence no patch on runs). A
    create/update/timer/daemon handler would need patch: grant it then."""
    src = "\n".join(p.read_text() for p in operator_sources())
    assert "standalone=True" in src, "without standalone kopf needs peering resources: grant them"
    handlers = re.findall(r"@kopf\.(on\.\w+|timer|daemon|index)\(([^)]*)\)", src)
    assert handlers, "no kopf handler found: is the scan still right?"
    for kind, args in handlers:
        assert kind in ("on.event", "on.startup", "on.cleanup", "on.login", "on.probe"), \
            f"@kopf.{kind} stores state on the run (patch needed): update GRANTED and the chart"
        if args.strip() and kind == "on.event":
            assert "PLURAL" in args or "mathfinetunes" in args, f"kopf handler on another resource: {args}"
