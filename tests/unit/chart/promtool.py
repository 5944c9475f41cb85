"""promtool (Debian's prometheus package) for the monitoring tests."""
import shutil
import subprocess
from pathlib import Path

import pytest

from hack.cluster import local
from tests.unit.chart import helm

INSTALL_HINT = "run `make prometheus` (installs Debian's prometheus package: prometheus + promtool)"


def promtool_bin() -> str:
    found = shutil.which("promtool")
    if not found:
        pytest.fail(f"promtool not found: {INSTALL_HINT}", pytrace=False)
    return found


def promtool(*args: str, cwd: Path = None) -> subprocess.CompletedProcess:
    return subprocess.run([promtool_bin(), *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def render_alert_rules(dest: Path, values=None) -> Path:
    """The chart's PrometheusRule spec, as the plain rule file Prometheus loads."""
    import yaml

    objs = helm.render({"metrics.prometheusRule.enabled": "true", **(values or {})},
                       show_only="templates/prometheusrule.yaml")
    rule = helm.one(objs, "PrometheusRule")
    dest.write_text(yaml.safe_dump(rule["spec"], sort_keys=False))
    return dest


def dashboard_exprs(grafana_range: str = "1h"):
    """(panel title, PromQL) for every target of the dashboard, with Grafana's
    variables replaced the way Grafana would for 'All'."""
    import json

    dash = json.loads((helm.CHART / "files" / "dashboard.json").read_text())
    out = []
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            expr = (target["expr"].replace("$__range", grafana_range)
                    .replace("$__rate_interval", "1m")
                    .replace('"$namespace"', '".*"').replace('"$run"', '".*"'))
            out.append((panel["title"], expr))
    return out


REPO = local.REPO
