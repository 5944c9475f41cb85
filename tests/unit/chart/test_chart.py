"""The operator's Helm chart, rendered and linted by the real helm (no cluster)."""
import pytest

from tests.unit.chart import helm

CRDS = ("mathtune.dev_mathfinetunes.yaml", "mathtune.dev_mathfinetunesweeps.yaml")


def test_helm_lint_is_clean():
    out = helm.helm("lint", "--strict", str(helm.CHART), "--kube-version", helm.KUBE_VERSION, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    # Clean means no findings at all, not even the informational ones.
    assert "[INFO]" not in out.stdout and "[WARNING]" not in out.stdout, out.stdout


@pytest.mark.parametrize("name", CRDS)
def test_chart_crd_is_the_crd(name):
    """One source of truth: `make chart-crd` copies crds/ into the chart."""
    source, in_chart = helm.local.REPO / "crds" / name, helm.CHART / "crds" / name
    assert source.exists(), f"{source} missing"
    assert in_chart.read_bytes() == source.read_bytes(), "run `make chart-crd`"


def test_defaults_render_the_operator_and_its_service():
    objs = helm.render()
    kinds = sorted(o["kind"] for o in objs)
    assert kinds.count("Deployment") == 1 and kinds.count("ServiceAccount") == 1
    assert "CustomResourceDefinition" in kinds
    svc = helm.one(objs, "Service", "mt-mathtune-operator-metrics")
    assert svc["spec"]["ports"][0]["targetPort"] == "metrics"
    # Monitoring CRDs of prometheus-operator are optional: off by default.
    assert not helm.find(objs, "ServiceMonitor") and not helm.find(objs, "PodMonitor")
    assert not helm.find(objs, "PrometheusRule")


def test_deployment_elects_a_leader_and_is_pod_security_restricted():
    objs = helm.render()
    dep = helm.one(objs, "Deployment")
    spec = dep["spec"]
    # Only the Lease holder reconciles, so pods may overlap in a rolling update.
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "RollingUpdate"}
    args = spec["template"]["spec"]["containers"][0]["args"]
    assert "--leader-election" in args and "--lease-namespace=mathtune-system" in args
    env = {e["name"]: e for e in spec["template"]["spec"]["containers"][0]["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    lease_role = helm.one(objs, "Role", "mt-mathtune-operator-leader-election")
    assert lease_role["metadata"]["namespace"] == "mathtune-system"
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (c,) = pod["containers"]
    sc = c["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert "add" not in sc["capabilities"]
    assert c["livenessProbe"]["httpGet"]["port"] == "health"
    assert c["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert not pod.get("hostNetwork") and not pod.get("hostPID")
    for vol in pod.get("volumes", []):
        assert "hostPath" not in vol, "restricted pods may not mount host paths"
    assert pod["serviceAccountName"] == "mt-mathtune-operator"


def test_cluster_scope_binds_cluster_roles_and_watches_all_namespaces():
    objs = helm.render()
    dep = helm.one(objs, "Deployment")
    assert "--all-namespaces" in dep["spec"]["template"]["spec"]["containers"][0]["args"]
    roles = {o["metadata"]["name"] for o in helm.find(objs, "ClusterRole")}
    assert roles == {"mt-mathtune-operator", "mt-mathtune-operator-cluster"}
    # The namespaced Roles: the nodes' device-info ConfigMaps, read only, in
    # kube-system; leader election's Lease, in the release namespace.
    roles = {r["metadata"]["name"]: r for r in helm.find(objs, "Role")}
    assert sorted(roles) == ["mt-mathtune-operator-device-info", "mt-mathtune-operator-leader-election"]
    device_info = roles["mt-mathtune-operator-device-info"]
    assert device_info["metadata"]["namespace"] == "kube-system"
    assert device_info["rules"] == [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list", "watch"]}]


def test_device_faults_can_be_turned_off_with_their_role():
    objs = helm.render({"deviceFaults.deviceInfoNamespace": ""})
    assert [r["metadata"]["name"] for r in helm.find(objs, "Role")] == ["mt-mathtune-operator-leader-election"]
    env = {e["name"]: e.get("value") for e in helm.one(objs, "Deployment")["spec"]["template"]["spec"]
           ["containers"][0]["env"]}
    assert env["MATHTUNE_DEVICE_INFO_NAMESPACE"] == ""


def test_namespace_scope_grants_run_permissions_only_in_those_namespaces():
    objs = helm.render({"watch.scope": "namespace", "watch.namespaces": "{team-a,team-b}"})
    dep = helm.one(objs, "Deployment")
    args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--namespace=team-a" in args and "--namespace=team-b" in args and "--all-namespaces" not in args
    roles = [r for r in helm.find(objs, "Role") if not r["metadata"]["name"].endswith(("-leader-election",
                                                                                       "-device-info"))]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    bindings = helm.find(objs, "RoleBinding")
    for b in bindings:
        assert b["subjects"] == [{"kind": "ServiceAccount", "name": "mt-mathtune-operator",
                                  "namespace": "mathtune-system"}]
    # The only cluster-wide grants left are reads: the CRD, and namespaces (kopf).
    (cluster_role,) = helm.find(objs, "ClusterRole")
    assert cluster_role["rules"] == [{"apiGroups": ["apiextensions.k8s.io"],
                                      "resources": ["customresourcedefinitions"],
                                      "verbs": ["list", "watch"]},
                                     {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]}]


def test_namespace_scope_defaults_to_the_release_namespace():
    objs = helm.render({"watch.scope": "namespace", "leaderElection.enabled": "false",
                        "deviceFaults.deviceInfoNamespace": ""}, namespace="ml")
    (role,) = helm.find(objs, "Role")
    assert role["metadata"]["namespace"] == "ml"
    assert "--namespace=ml" in helm.one(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]


def test_monitors_are_gated_by_values_and_carry_additional_labels():
    objs = helm.render({
        "metrics.serviceMonitor.enabled": "true",
        "metrics.serviceMonitor.additionalLabels.release": "kps",
        "metrics.podMonitor.enabled": "true",
        "metrics.podMonitor.additionalLabels.release": "kps",
        "metrics.prometheusRule.enabled": "true",
        "metrics.prometheusRule.additionalLabels.release": "kps",
    })
    sm = helm.one(objs, "ServiceMonitor")
    pm = helm.one(objs, "PodMonitor")
    pr = helm.one(objs, "PrometheusRule")
    for obj in (sm, pm, pr):
        assert obj["metadata"]["labels"]["release"] == "kps"
    svc = helm.one(objs, "Service")
    assert all(svc["metadata"]["labels"][k] == v for k, v in sm["spec"]["selector"]["matchLabels"].items())
    assert pm["spec"]["selector"]["matchLabels"] == {"mathtune.dev/stage": "train"}
    relabel_targets = {r["targetLabel"] for r in pm["spec"]["podMetricsEndpoints"][0]["relabelings"]}
    assert {"run", "stage", "pod"} <= relabel_targets
    alerts = {r["alert"] for g in pr["spec"]["groups"] for r in g["rules"]}
    assert alerts == {"MathFinetuneRunFailed", "MathFinetuneStageStuck", "MathFinetuneLossNaN",
                      "MathFinetuneLossRising", "MathFinetuneQualityGateFailed"}


def test_service_monitor_without_service_is_refused():
    out = helm.render_text({"metrics.serviceMonitor.enabled": "true", "metrics.service.enabled": "false"},
                           check=False)
    assert out.returncode != 0 and "needs metrics.service.enabled" in out.stderr


@pytest.mark.parametrize("key,value,complaint", [
    ("replicaCount", "9", "replicaCount"),
    ("watch.scope", "everywhere", "scope"),
    ("image.pullPolicy", "Sometimes", "pullPolicy"),
    ("metrics.serviceMonitor.interval", "often", "interval"),
    ("ports.metrics", "70000", "metrics"),
    ("nosuchkey", "1", "nosuchkey"),
])
def test_schema_refuses_bad_values(key, value, complaint):
    out = helm.render_text({key: value}, check=False)
    assert out.returncode != 0
    assert "schema" in out.stderr and complaint in out.stderr, out.stderr


def test_two_replicas_need_leader_election():
    assert helm.one(helm.render({"replicaCount": "2"}), "Deployment")["spec"]["replicas"] == 2
    refused = helm.render_text({"replicaCount": "2", "leaderElection.enabled": "false"}, check=False)
    assert refused.returncode != 0 and "replicaCount above 1 needs leaderElection.enabled" in refused.stderr
    dep = helm.one(helm.render({"leaderElection.enabled": "false"}), "Deployment")
    assert dep["spec"]["strategy"] == {"type": "Recreate"}
    assert "--no-leader-election" in dep["spec"]["template"]["spec"]["containers"][0]["args"]
    assert [r["metadata"]["name"] for r in helm.find(helm.render({"leaderElection.enabled": "false"}), "Role")] == \
        ["mt-mathtune-operator-device-info"]
