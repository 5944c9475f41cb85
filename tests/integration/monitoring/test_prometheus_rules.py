"""The chart's alert rules loaded by a real Prometheus (Debian's package):
they parse, evaluate, and fire on a scraped series."""

import pytest

from tests.integration.monitoring.exporter import StaticExporter
from tests.integration.monitoring.prom import LocalPrometheus
from tests.unit.chart import promtool
from tests.waiting import wait_for


def _wait(predicate, timeout=60, what="condition"):
    return wait_for(predicate, timeout=timeout, what=what)


@pytest.fixture
def gate_exporter():
    text = ("# TYPE mathtune_quality_gate_passed gauge\n"
            'mathtune_quality_gate_passed{namespace="math",run="forgot"} 0\n'
            'mathtune_quality_gate_passed{namespace="math",run="kept"} 1\n')
    exporter = StaticExporter(text).start()
    yield exporter
    exporter.stop()


def test_prometheus_loads_the_rules_and_fires_the_gate_alert(tmp_path, gate_exporter):
    rules = promtool.render_alert_rules(tmp_path / "alerts.yaml")
    prom = LocalPrometheus(tmp_path / "prom", {"run-metrics": [gate_exporter.target]}, [rules]).start()
    try:
        groups = prom.api("rules")["groups"]
        loaded = {r["name"] for g in groups for r in g["rules"]}
        assert {"MathFinetuneRunFailed", "MathFinetuneStageStuck", "MathFinetuneLossNaN",
                "MathFinetuneLossRising", "MathFinetuneQualityGateFailed"} <= loaded
        assert all(r["health"] != "err" for g in groups for r in g["rules"])
        prom.wait_up("run-metrics")
        firing = _wait(lambda: prom.query('ALERTS{alertname="MathFinetuneQualityGateFailed",alertstate="firing"}'),
                       what="gate alert firing")
        assert [a["metric"]["run"] for a in firing] == ["forgot"]
    finally:
        prom.stop()
