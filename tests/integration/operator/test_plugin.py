"""`kubectl mathtune` as a person uses it: through a pseudo-terminal (pexpect),
against the real control plane and a real operator, the runs' stage pods
played on kwok's nodes. What is checked is what the screen shows and the exit
codes (docs/cli.md). Logs and the volume reader need pods that really run:
tests/e2e/test_run_cpu.py drives those on the real node."""
import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.plugin_terminal import PLUGIN, finished, spawn

from . import helpers as h

pytestmark = pytest.mark.integration

STAGES = ["prepare", "tokenize", "train", "merge", "evaluate", "predict", "report", "export"]


def run_file(tmp_path, name, **updates):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(h.run_doc("run-cpu.yaml", name, **updates)))
    return path


def play(apis, namespace, name, stages, **results):
    for stage in stages:
        h.finish_stage(apis["core"], namespace, f"{name}-{stage}", 0, h.result(stage, **results.get(stage, {})))


def test_submit_watch_shows_the_run_live_and_exits_with_its_outcome(namespace, apis, operator, volumes, kubeconfig,
                                                                   tmp_path):
    h.bind_work_volume(apis["core"], namespace, "good-work", volumes)
    child, reader = spawn(kubeconfig, namespace, "submit", "--watch", str(run_file(tmp_path, "good")))
    h.wait(lambda: h.jobs_of(apis["batch"], namespace, "good"), 60, "the run's first Job")
    play(apis, namespace, "good", STAGES)
    code, screen = finished(child, reader)
    assert code == 0, screen[-3000:]
    assert "mathfinetune good created in namespace " + namespace in screen
    assert "good: Succeeded, stage Done" in screen and "kept its original ability (gate passed)" in screen
    for stage in STAGES:
        assert stage in screen, stage
    assert "last event: " in screen  # the run's final Event when it arrived within the plugin's wait

    # The gate failed: the run succeeded, the exit code says what it means.
    h.bind_work_volume(apis["core"], namespace, "forgot-work", volumes)
    child, reader = spawn(kubeconfig, namespace, "submit", "-w", str(run_file(tmp_path, "forgot")))
    h.wait(lambda: h.jobs_of(apis["batch"], namespace, "forgot"), 60, "the run's first Job")
    play(apis, namespace, "forgot", STAGES[:-2], )
    play(apis, namespace, "forgot", ["report"], report={"gatePassed": False, "passedEpochs": []})
    play(apis, namespace, "forgot", ["export"], export={"skipped": True, "reason": "no epoch passed the gate"})
    code, screen = finished(child, reader)
    assert code == 3 and "gate failed" in screen, screen[-3000:]


def test_a_failed_run_exits_4_and_explain_names_the_stage_and_its_error(namespace, apis, operator, volumes,
                                                                        kubeconfig, tmp_path):
    h.bind_work_volume(apis["core"], namespace, "bad-work", volumes)
    child, reader = spawn(kubeconfig, namespace, "submit", "--watch",
                          str(run_file(tmp_path, "bad", runPolicy__backoffLimit=0)))
    play(apis, namespace, "bad", ["prepare"])
    h.finish_stage(apis["core"], namespace, "bad-tokenize", 2,
                   {"stage": "tokenize", "ok": False, "error": "spec.data.seqLength: at least 16"})
    code, screen = finished(child, reader)
    assert code == 4 and "bad: Failed, stage tokenize" in screen, screen[-3000:]
    child, reader = spawn(kubeconfig, namespace, "explain", "bad")
    code, screen = finished(child, reader)
    assert code == 0 and "bad failed in stage tokenize after 1 attempt(s)" in screen, screen
    assert "spec.data.seqLength: at least 16" in screen


def test_status_results_and_compare_read_two_runs(namespace, apis, operator, volumes, kubeconfig, tmp_path):
    for name, accuracy in (("one", 0.41), ("two", 0.52)):
        h.bind_work_volume(apis["core"], namespace, f"{name}-work", volumes)
        h.create_run(apis["custom"], namespace,
                     h.run_doc("run-cpu.yaml", name, lora__rank=8 if name == "one" else 16))
        play(apis, namespace, name, STAGES, report={"mathAccuracy": accuracy, "perType": {"add": accuracy}})
        h.wait_phase(apis["custom"], namespace, name, "Succeeded")
    child, reader = spawn(kubeconfig, namespace, "status", "one")
    code, screen = finished(child, reader)
    assert code == 0 and "one: Succeeded, stage Done" in screen
    for stage in STAGES:
        assert stage in screen
    assert "Exported" in screen and "RunSucceeded" in screen
    child, reader = spawn(kubeconfig, namespace, "results", "two")
    code, screen = finished(child, reader)
    assert code == 0 and "best epoch 5, original-ability gate passed" in screen, screen
    assert "52.0%" in screen and "SQuAD F1" in screen and "export/hf" in screen
    child, reader = spawn(kubeconfig, namespace, "results", "two", "-o", "json")
    code, screen = finished(child, reader)
    data = json.loads(screen[screen.index("{"):])
    assert code == 0 and data["mathAccuracy"] == 0.52 and data["perType"] == {"add": 0.52}
    child, reader = spawn(kubeconfig, namespace, "compare", "one", "two")
    code, screen = finished(child, reader)
    assert code == 0, screen
    assert "* math accuracy (careful reader)" in screen and "0.41" in screen and "0.52" in screen
    assert "lora.rank" in screen and "  SQuAD F1" in screen  # the same in both: not marked
    child, reader = spawn(kubeconfig, namespace, "compare", "one", "two", "-o", "json")
    code, screen = finished(child, reader)
    data = json.loads(screen[screen.index("{"):])
    assert {"field": "lora.rank", "values": [8, 16]} in data["recipe"]


def test_bad_input_gets_a_message_and_an_exit_code_never_a_traceback(namespace, apis, kubeconfig, tmp_path, crd):
    cases = []
    not_a_run = tmp_path / "pod.yaml"
    not_a_run.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n")
    cases.append((("submit", str(not_a_run)), 2, "not a MathFinetune (expected apiVersion mathtune.dev/v1alpha1"))
    refused = run_file(tmp_path, "refused", training__epochs=0)
    cases.append((("submit", str(refused)), 2, "the API server refused it"))
    cases.append((("submit", str(tmp_path / "absent.yaml")), 2, "cannot read it"))
    cases.append((("status", "nobody"), 2, f"run nobody: not found in namespace {namespace}"))
    cases.append((("compare", "nobody"), 2, "compare needs two runs or more"))
    for args, want_code, want in cases:
        child, reader = spawn(kubeconfig, namespace, *args)
        code, screen = finished(child, reader)
        assert code == want_code and want in screen and "Traceback" not in screen, (args, screen)
    unreachable = tmp_path / "kubeconfig"
    doc = yaml.safe_load(Path(kubeconfig).read_text())
    doc["clusters"][0]["cluster"]["server"] = "https://127.0.0.1:1"
    unreachable.write_text(yaml.safe_dump(doc))
    child, reader = spawn(unreachable, namespace, "status", "x")
    code, screen = finished(child, reader)
    assert code == 1 and "cannot reach the cluster at https://127.0.0.1:1" in screen and "Traceback" not in screen


def test_help_lists_every_command_and_completion_names_runs(namespace, apis, operator, volumes, kubeconfig):
    child, reader = spawn(kubeconfig, namespace, "--help")
    code, screen = finished(child, reader)
    for command in ("submit", "status", "logs", "results", "compare", "artifacts", "explain"):
        assert f"  {command} " in screen, command
    assert "--watch" in finished(*spawn(kubeconfig, namespace, "submit", "--help"))[1]
    assert "-f, --follow" in finished(*spawn(kubeconfig, namespace, "logs", "--help"))[1]
    h.bind_work_volume(apis["core"], namespace, "alpha-work", volumes)
    h.create_run(apis["custom"], namespace, h.run_doc("run-cpu.yaml", "alpha"))
    env = {**os.environ, "_KUBECTL_MATHTUNE_COMPLETE": "bash_complete", "COMP_WORDS":
           f"kubectl-mathtune --kubeconfig {kubeconfig} -n {namespace} status al", "COMP_CWORD": "6"}
    out = subprocess.run([PLUGIN], env=env, capture_output=True, text=True, timeout=60)
    assert "plain,alpha" in out.stdout, out.stdout + out.stderr
