"""A MathFinetune run on the real control plane, driven by the real operator
process, with each stage pod completed as the stage would (result JSON in the
termination message)."""
import json
import shutil
import subprocess

import pytest

from hack.cluster import local

from . import helpers as h

pytestmark = pytest.mark.integration

NPU = "huawei.com/Ascend910"
STAGES = ["prepare", "tokenize", "train", "merge", "evaluate", "predict", "report"]


def _table(kubeconfig, ns, name):
    return local.kubectl("get", "mft", "-n", ns, name, kubeconfig=kubeconfig).stdout


def test_full_ascend_run_from_apply_to_succeeded(kubeconfig, namespace, apis, operator, volumes, tmp_path):
    core, batch, custom = apis["core"], apis["batch"], apis["custom"]
    name = "seed000"
    h.bind_work_volume(core, namespace, f"{name}-work", volumes)
    h.create_run(custom, namespace, h.run_doc("seed000-llama3-quota-cot.yaml", name))
    tables = [_table(kubeconfig, namespace, name)]
    after_stage = []  # the table's row right after each stage succeeded

    for stage in STAGES:
        job = f"{name}-{stage}"
        pod = h.running_pod(core, namespace, job)
        node = core.read_node(pod.spec.node_name)
        # Ascend profile: every stage on an Ascend node; NPUs only where the stage computes
        # (evaluate and predict run the merged checkpoint on one card).
        assert node.metadata.labels.get("accelerator") == "huawei-Ascend910", (stage, pod.spec.node_name)
        limits = pod.spec.containers[0].resources.limits or {}
        assert limits.get(NPU) == {"train": "4", "evaluate": "1", "predict": "1"}.get(stage), (stage, limits)
        if stage == "train":
            h.write_pod_log(custom, pod, tmp_path / "train.log", [
                "[INFO] building the model",
                'mathtune-progress {"epoch":2,"epochs":5,"step":1200,"steps":3045,"loss":0.7312,'
                '"samplesPerSecond":4.91,"etaSeconds":3796}',
            ])
            run = h.wait(lambda: (h.get_run(custom, namespace, name)["status"].get("progress") or {}).get("loss")
                         and h.get_run(custom, namespace, name), 60, "training progress in status")
            prog = run["status"]["progress"]
            assert prog["epoch"] == 2 and prog["step"] == 1200 and prog["etaSeconds"] == 3796
            assert prog["summary"] == "train epoch 2/5 step 1200/3045 27.9%"
            tables.append(_table(kubeconfig, namespace, name))
            assert "0.7312" in tables[-1] and "epoch 2/5" in tables[-1]
            metrics = operator.metrics()
            assert f'mathtune_train_loss{{namespace="{namespace}",run="{name}"}} 0.7312' in metrics
        h.finish_stage(core, namespace, job, 0, h.result(stage))
        h.wait(lambda stage=stage: h.stage_row(h.get_run(custom, namespace, name), stage).get("state") == "Succeeded",
               60, f"stage {stage} Succeeded in status")
        tables.append(_table(kubeconfig, namespace, name))
        after_stage.append(tables[-1].splitlines()[1])

    run = h.wait_phase(custom, namespace, name, "Succeeded")
    status = run["status"]
    assert status["stage"] == "Done"
    assert [r["state"] for r in status["stages"]] == ["Succeeded"] * 7
    assert all(r["attempts"] == 1 and r["jobName"] == f"{name}-{r['name']}" for r in status["stages"])
    res = status["results"]
    assert res["rows"]["deduped"] == 548942 and res["rows"]["classified"]["simplify"] == 45
    assert res["tokenize"]["paddingShare"] == 0.83
    assert res["trainableParams"] == 3407872 and res["lowParamRatio"] == pytest.approx(3407872 / 8033669120)
    assert res["baseF1"] == 59.87 and res["epochs"]["1"]["f1"] == 60.41 and res["epochs"]["5"]["accuracy"] == 0.8475
    assert res["bestEpoch"] == 5 and res["gatePassed"] is True and res["perType"]["mean"] == 0.91
    assert res["artifacts"]["merged"] == "/data/runs/r/merge/full"
    assert status["progress"]["loss"] == 0.2031
    conds = {c["type"]: c for c in status["conditions"]}
    assert conds["Succeeded"]["status"] == "True" and conds["Ready"]["reason"] == "RunSucceeded"
    assert all(conds[t]["status"] == "True" for t in
               ("Prepared", "Tokenized", "Trained", "Merged", "Evaluated", "Predicted", "Reported"))
    assert all(c["observedGeneration"] == run["metadata"]["generation"] for c in status["conditions"])

    # The printer columns filled in as the run went.
    header = tables[0].splitlines()[0].split()
    assert header == ["NAME", "STAGE", "PROGRESS", "LOSS", "F1", "EM", "MATH-ACC", "AGE"]
    final = tables[-1].splitlines()[1]
    # F1/EM with two decimals, accuracy as a percentage, PROGRESS saying what the run found.
    assert final.split()[1:3] == ["Done", "done:"], final
    assert "best epoch 5, F1 55.10, acc 84.8%, gate passed" in final, final
    assert final.split()[-3:-1] == ["40.20", "84.8%"] and "0.2031" in final and " 55.10 " in final, final
    # The success of one stage and the start of the next are one status write:
    # the STAGE column moves straight on.
    for done, row in zip(STAGES, after_stage):
        following = STAGES[STAGES.index(done) + 1] if done != STAGES[-1] else "Done"
        assert row.split()[1] == following, (done, row)

    # Events are posted in the background: wait for what they say, one start and one success a stage.
    reasons = h.wait(lambda: (lambda r: r if r.count("StageStarted") == len(STAGES) == r.count("StageSucceeded")
                              and "RunSucceeded" in r else None)(h.events_of(core, namespace, name)),
                     30, "a StageStarted and a StageSucceeded Event per stage, then RunSucceeded")
    assert reasons.count("StageStarted") == len(STAGES)
    jobs = h.jobs_of(batch, namespace, name)
    assert sorted(j.metadata.name for j in jobs) == sorted(f"{name}-{s}" for s in STAGES)
    for job in jobs:
        assert job.metadata.owner_references[0].uid == run["metadata"]["uid"]
    # Its writes carry its name (kubectl get --show-managed-fields, the API
    # server's audit log and metrics), not its client library's.
    assert ("mathtune-operator", "status") in {(f["manager"], f.get("subresource", ""))
                                                for f in run["metadata"]["managedFields"]}, run["metadata"]
    for job in jobs:
        assert "mathtune-operator" in {f.manager for f in job.metadata.managed_fields}, job.metadata.managed_fields
    cm = core.read_namespaced_config_map(f"{name}-spec", namespace)
    doc = json.loads(cm.data["spec.json"])
    assert doc["spec"]["data"]["sample"]["quotas"]["mass"] == 1000 and doc["metadata"]["name"] == name
    metrics = operator.metrics()
    assert f'mathtune_run_status{{namespace="{namespace}",phase="Succeeded",run="{name}"}} 1.0' in metrics
    assert 'mathtune_stage_duration_seconds_count{result="Succeeded",stage="train"}' in metrics
    # The live endpoint is clean for Prometheus' own linter.
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: run `make prometheus` (Debian's prometheus package)"
    lint = subprocess.run([promtool, "check", "metrics"], input=metrics.encode(), capture_output=True)
    assert lint.returncode == 0 and not lint.stdout.strip(), lint.stdout + lint.stderr
    assert "Traceback" not in operator.logs()
    print("kubectl get mft, as the run went:\n" + "\n".join(t.rstrip() for t in tables))


def test_the_operator_holds_the_charts_account_and_nothing_else(operator, namespace):
    """Every test here starts its operator with a token of the chart's
    ServiceAccount (the `operator` fixture), and fails if RBAC refused that
    operator anything: together they show the chart grants what the
    operator uses."""
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=str(operator.kubeconfig))
    review = client.AuthenticationV1Api(api).create_self_subject_review({})
    user = review.status.user_info.username
    assert user.startswith(f"system:serviceaccount:{namespace}:acct-"), user
    assert user.endswith("-mathtune-operator"), user
    # ... and that account is not an administrator: the chart gives no right to nodes' objects.
    access = client.AuthorizationV1Api(api).create_self_subject_access_review(
        {"spec": {"resourceAttributes": {"verb": "delete", "resource": "nodes"}}})
    assert access.status.allowed is False
