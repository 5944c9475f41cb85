"""Prometheus (Debian's package) scrapes the real operator, running as the
chart's Deployment on the real node, through a whole run; afterwards every
panel of the chart's dashboard returns data from that Prometheus.

The stage pods are played to their ends with the stages' result JSON (the
operator's own cluster tests do the same, tests/integration/operator), so
this proves the monitoring path quickly and on its own; tests/e2e repeats
the proof on a run whose stages really ran.
"""
import time

import pytest

from hack.cluster import demo
from tests.integration.monitoring.exporter import StaticExporter, npu_exporter_text
from tests.integration.monitoring.prom import LocalPrometheus
from tests.integration.operator import helpers as h
from tests.unit.chart import promtool

pytestmark = pytest.mark.integration

STAGES = ["prepare", "tokenize", "train", "merge", "evaluate", "predict", "report"]
PROGRESS = ['mathtune-progress {"epoch":1,"epochs":5,"step":300,"steps":3045,"loss":1.361,'
            '"samplesPerSecond":4.91,"etaSeconds":5200}',
            'mathtune-progress {"epoch":2,"epochs":5,"step":1200,"steps":3045,"loss":0.7312,'
            '"samplesPerSecond":5.02,"etaSeconds":3796}']


def test_operator_is_scraped_through_a_run_and_every_panel_has_data(kubeconfig, k8s_api, namespace, tmp_path):
    from kubernetes import client

    core, custom = client.CoreV1Api(k8s_api), client.CustomObjectsApi(k8s_api)
    volumes = []
    stack = demo.Stack(kubeconfig, tmp_path / "stack", release=f"mon-{namespace[-5:]}", namespace=namespace,
                       watch_namespace=namespace, restricted=False,
                       operator_env={"MATHTUNE_PROGRESS_INTERVAL": "1"})
    npu = StaticExporter().start()
    prom = None
    try:
        with stack:
            rules = promtool.render_alert_rules(tmp_path / "alerts.yaml")
            prom = LocalPrometheus(tmp_path / "prom", {"mathtune-operator": [stack.metrics_target],
                                                       "npu-exporter": [npu.target]}, [rules]).start()
            prom.wait_up("mathtune-operator")
            started = time.time()
            name = "seed000"
            h.bind_work_volume(core, namespace, f"{name}-work", volumes)
            h.create_run(custom, namespace, h.run_doc("seed000-llama3-quota-cot.yaml", name))
            up_while_running = False
            for stage in STAGES:
                job = f"{name}-{stage}"
                pod = h.running_pod(core, namespace, job)
                if stage == "train":
                    npu.text = npu_exporter_text(namespace, [pod.metadata.name], chips_per_pod=4)
                    for i, line in enumerate(PROGRESS):
                        # The same file, growing: kwok serves it as the pod's log.
                        h.write_pod_log(custom, pod, tmp_path / "train.log", ["[INFO] step"] + PROGRESS[:i + 1])
                        loss = line.split('"loss":')[1].split(",")[0]
                        h.wait(lambda loss=loss: prom.query(f'mathtune_train_loss{{namespace="{namespace}"}} == {loss}'), 60,
                               f"training loss {loss} scraped")
                    # The join of NPU metrics to runs needs the pod series while training runs.
                    h.wait(lambda: prom.query('npu_chip_info_utilization * on (namespace, pod_name) group_left (run) '
                                              'max by (namespace, pod_name, run) (label_replace(mathtune_stage_pod_info'
                                              '{stage="train"}, "pod_name", "$1", "pod", "(.*)"))'),
                           60, "NPU metrics joined to the run")
                    up_while_running = prom.targets_up().get("mathtune-operator") == "up"
                h.finish_stage(core, namespace, job, 0, h.result(stage))
                h.wait(lambda stage=stage: h.stage_row(h.get_run(custom, namespace, name), stage).get("state") == "Succeeded",
                       60, f"stage {stage} Succeeded")
            h.wait(lambda: h.get_run(custom, namespace, name)["status"].get("phase") == "Succeeded", 60,
                   "run Succeeded")
            # "After the run": its final series (phase, results, gate) scraped and
            # the rules evaluated on them; the range ends after the step holding them.
            ended = prom.settled_after([f'mathtune_run_status{{namespace="{namespace}",phase="Succeeded"}} == 1',
                                        f'mathtune_quality_gate_passed{{namespace="{namespace}"}}',
                                        f'mathtune_predict_accuracy{{namespace="{namespace}"}}'], 1)
            assert up_while_running
            span = f"{int(ended - started) + 60}s"
            empty = []
            for title, expr in promtool.dashboard_exprs(grafana_range=span):
                data = prom.api("query_range", query=expr, start=f"{started:.3f}", end=f"{ended:.3f}", step="1s")
                if not data["result"]:
                    empty.append(f"{title}: {expr}")
            assert not empty, "panels without data:\n" + "\n".join(empty)
            # A healthy run whose gate passed raises nothing, not even a pending alert.
            assert prom.alerts_during(started, ended) == {}
    finally:
        if prom:
            prom.stop()
        npu.stop()
        stack.uninstall()
        for pv in volumes:
            try:
                core.delete_persistent_volume(pv)
            except client.exceptions.ApiException:
                pass
