"""The Grafana dashboard: well-formed, every query valid PromQL (parsed by
promtool), and shipped in a ConfigMap the Grafana sidecar picks up."""
import json

import yaml

from tests.unit.chart import helm, promtool

DASHBOARD = helm.CHART / "files" / "dashboard.json"


def test_dashboard_covers_what_operators_look_at():
    dash = json.loads(DASHBOARD.read_text())
    titles = {p["title"] for p in dash["panels"]}
    for wanted in ("Runs by phase", "Runs by stage", "Stage duration (mean)", "Training loss",
                   "Training throughput", "SQuAD F1 / EM (chosen epoch)", "Math accuracy (chosen epoch)",
                   "NPU utilisation by run", "NPU HBM used by run", "NPU health by run"):
        assert wanted in titles
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    assert dash["uid"] == "mathtune-runs"


def test_npu_panels_join_npu_exporter_by_pod():
    dash = json.loads(DASHBOARD.read_text())
    for panel in dash["panels"]:
        if panel["title"].startswith("NPU"):
            expr = panel["targets"][0]["expr"]
            assert "npu_chip_info_" in expr
            assert "on (namespace, pod_name) group_left (run)" in expr


def test_every_panel_query_is_valid_promql(tmp_path):
    """promtool parses a rule file's expressions: one recording rule per panel query."""
    exprs = promtool.dashboard_exprs()
    assert len(exprs) >= 13
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{i}", "expr": expr} for i, (_, expr) in enumerate(exprs)]}]}
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump(rules))
    out = promtool.promtool("check", "rules", str(path))
    assert out.returncode == 0, out.stdout + out.stderr


def test_configmap_is_labelled_for_the_grafana_sidecar():
    objs = helm.render(show_only="templates/dashboard.yaml")
    cm = helm.one(objs, "ConfigMap")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(cm["data"]["mathtune.json"]) == json.loads(DASHBOARD.read_text())
    objs = helm.render({"grafana.dashboard.label": "my_dashboards", "grafana.dashboard.labelValue": "yes"},
                       show_only="templates/dashboard.yaml")
    assert helm.one(objs, "ConfigMap")["metadata"]["labels"]["my_dashboards"] == "yes"


def test_dashboard_can_be_turned_off():
    out = helm.render_text({"grafana.dashboard.enabled": "false"})
    assert "grafana_dashboard" not in out.stdout


def _operator_metric_names():
    import re

    src = (helm.local.REPO / "operator" / "mathtune_operator" / "metrics.py").read_text()
    names = set(re.findall(r'"(mathtune_[a-z_]+)"', src))
    assert names, "no mathtune_ metric found in the operator's metrics module"
    return names


def _used_metric_names(text):
    import re

    used = set(re.findall(r"\b(mathtune_[a-z_]+|npu_chip_info_[a-z_]+)\b", text))
    out = set()
    for name in used:
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and name.startswith("mathtune_"):
                name = name[: -len(suffix)]
        out.add(name)
    return out


def test_dashboard_and_alerts_use_only_metrics_the_operator_exports(tmp_path):
    """A renamed metric would leave a panel or an alert silently empty."""
    exported = _operator_metric_names()
    alerts = promtool.render_alert_rules(tmp_path / "alerts.yaml").read_text()
    for text, where in ((DASHBOARD.read_text(), "dashboard"), (alerts, "alerts")):
        for name in _used_metric_names(text):
            if name.startswith("npu_chip_info_"):
                assert name in {"npu_chip_info_utilization", "npu_chip_info_hbm_used_memory",
                                "npu_chip_info_hbm_total_memory", "npu_chip_info_health_status"}, name
            else:
                assert name in exported, f"{where} uses {name}, which the operator does not export"
