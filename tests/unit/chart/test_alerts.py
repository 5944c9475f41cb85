"""The chart's alerts, checked and unit-tested by the real promtool."""
import shutil

import pytest

from tests.unit.chart import helm, promtool

HERE = helm.local.REPO / "tests" / "unit" / "chart"


def test_rendered_rules_pass_promtool_check(tmp_path):
    rules = promtool.render_alert_rules(tmp_path / "alerts.rendered.yaml")
    out = promtool.promtool("check", "rules", str(rules))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 5 rules found" in out.stdout


def test_alert_unit_tests_pass(tmp_path):
    promtool.render_alert_rules(tmp_path / "alerts.rendered.yaml")
    shutil.copy(HERE / "alerts_test.yaml", tmp_path / "alerts_test.yaml")
    out = promtool.promtool("test", "rules", "alerts_test.yaml", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr


def test_alert_unit_tests_see_threshold_changes(tmp_path):
    """The unit tests really exercise the thresholds: a stage-stuck limit of
    7h must break the expectation that 6h20m fires."""
    promtool.render_alert_rules(tmp_path / "alerts.rendered.yaml",
                                {"metrics.prometheusRule.stageStuckSeconds": "25200"})
    shutil.copy(HERE / "alerts_test.yaml", tmp_path / "alerts_test.yaml")
    out = promtool.promtool("test", "rules", "alerts_test.yaml", cwd=tmp_path)
    assert out.returncode != 0
    assert "MathFinetuneStageStuck" in out.stdout + out.stderr


@pytest.mark.parametrize("alert", ["MathFinetuneRunFailed", "MathFinetuneStageStuck", "MathFinetuneLossNaN",
                                   "MathFinetuneLossRising", "MathFinetuneQualityGateFailed"])
def test_every_alert_has_a_unit_test(alert):
    tests = (HERE / "alerts_test.yaml").read_text()
    assert f"alertname: {alert}\n    exp_alerts:\n    - exp_labels" in tests, f"{alert} is never shown firing"
