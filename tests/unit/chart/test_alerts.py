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


def _scraped_real_loss(log, scrape_seconds: int):
    """mathtune_train_loss as Prometheus would scrape it through a real contest
    run: the latest loss MindFormers logged at each scrape (one line per two
    steps, a step every ~3.2 s, 5 epochs, ~63 minutes)."""
    import re
    from datetime import datetime

    line = re.compile(r"^(\S+ \S+),\d+ - .*loss: ([0-9.]+),")
    points = [(datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").timestamp(), float(m.group(2)))
              for m in map(line.match, log.read_text(errors="replace").splitlines()) if m]
    start, end = points[0][0], points[-1][0]
    values, i = [], 0
    for t in range(int(start), int(end) + 1, scrape_seconds):
        while i + 1 < len(points) and points[i + 1][0] <= t:
            i += 1
        values.append(f"{points[i][1]:g}")
    return values


def _loss_rising_never_holds(tmp_path, values, interval):
    """promtool: with `for` 0 (a pending alert shows as firing), LossRising holds at no minute of the series."""
    import yaml

    promtool.render_alert_rules(tmp_path / "alerts.rendered.yaml", {"metrics.prometheusRule.for.lossRising": "0m"})
    minutes = len(values) * interval // 60
    tests = {"rule_files": ["alerts.rendered.yaml"], "evaluation_interval": "1m", "tests": [{
        "interval": f"{interval}s",
        "input_series": [{"series": 'mathtune_train_loss{namespace="math", run="r"}', "values": " ".join(values)}],
        "alert_rule_test": [{"eval_time": f"{m}m", "alertname": "MathFinetuneLossRising", "exp_alerts": []}
                            for m in range(1, minutes + 1)],
    }]}
    (tmp_path / "loss_test.yaml").write_text(yaml.safe_dump(tests))
    out = promtool.promtool("test", "rules", "loss_test.yaml", cwd=tmp_path)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]


def test_a_real_runs_noisy_loss_never_raises_loss_rising(tmp_path, real_fixtures):
    """A real contest run's per-step loss swings between 0.5 and 1.3 around a
    flat trend (batches differ). That is noise, not a rising loss."""
    values = _scraped_real_loss(real_fixtures / "mindformers-logs" / "finetune_worker_0.log", 30)
    assert len(values) > 100, "the real log should give over an hour of scrapes"
    _loss_rising_never_holds(tmp_path, values, 30)


def test_a_short_training_with_a_replay_mix_never_raises_loss_rising(tmp_path):
    """The CPU example's per-step loss (math rows memorised, replayed passages
    not) swings fifty-fold from one step to the next: these are its first
    steps' losses, scraped every 5 s for its three minutes of training. An
    average of a few such steps is noise too: the alert waits for a full
    smoothing window of training."""
    first_steps = "1.21 0.24 0.03 3.17 2.75 2.94 0.67 2.67 0.42 1.74 1.50 1.54 0.83 0.03 2.17 0.54 1.08 0.04"
    values = (first_steps.split() * 2)[:36]
    _loss_rising_never_holds(tmp_path, values, 5)
