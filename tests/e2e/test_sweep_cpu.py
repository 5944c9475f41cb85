"""examples/sweep-cpu.yaml on the local cluster, as a user runs it: the chart
installed (the operator in its image on the real node), the trials' stage
pods in the pipeline-cpu image on the real node (MindSpore on CPU), the
trials sharing one work volume. One sweep serves every test in this module."""
import json
import re
import time
import uuid
from collections import defaultdict

import pytest
import yaml
from kubernetes import client

from hack.cluster import demo
from tests import chromium
from tests.waiting import add_changed_row, create_test_namespace

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.mindspore]

EXAMPLE = demo.REPO / "examples" / "sweep-cpu.yaml"
SWEEP_TIMEOUT = 25 * 60  # under pytest-timeout's, so this message is the one a slow sweep gets


@pytest.fixture(scope="module")
def finished_sweep(kubeconfig, k8s_api, tmp_path_factory, demo_inputs):
    core = client.CoreV1Api(k8s_api)
    ns = f"e2e-sweep-{uuid.uuid4().hex[:6]}"
    create_test_namespace(core, ns)
    out = tmp_path_factory.mktemp("sweep")
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["metadata"]["namespace"] = ns
    name = doc["metadata"]["name"]
    sweep_file = out / "sweep.yaml"
    sweep_file.write_text(yaml.safe_dump(doc))
    stack = demo.Stack(kubeconfig, out, release=f"sweep-{ns[-6:]}", namespace=ns, watch_namespace=ns)
    table = []
    try:
        with stack:
            # The claim the trials share, with the example's inputs on it (as `make demo` does for a run).
            demo.seed_work_volume(kubeconfig, {"metadata": {"name": name}, "spec": doc["spec"]["template"]}, ns,
                                  made=demo_inputs)
            started = time.monotonic()
            demo.kubectl("apply", "-f", str(sweep_file), kubeconfig=kubeconfig)
            phase = ""
            while time.monotonic() - started < SWEEP_TIMEOUT:
                sweep = json.loads(demo.kubectl("get", "mfts", "-n", ns, name, "-o", "json",
                                                kubeconfig=kubeconfig).stdout)
                phase = (sweep.get("status") or {}).get("phase", "")
                # The table row is read after the object, so the row of the last pass shows the final status
                # (read before it, the finishing write could land between the two reads).
                add_changed_row(table, demo.kubectl("get", "mfts", "-n", ns, name, kubeconfig=kubeconfig,
                                        check=False).stdout)
                if phase in ("Succeeded", "Failed"):
                    break
                time.sleep(5)
            seconds = time.monotonic() - started
            trials = json.loads(demo.kubectl("get", "mft", "-n", ns, "-l", f"mathtune.dev/sweep={name}", "-o",
                                             "json", kubeconfig=kubeconfig).stdout)["items"]
            yield {"sweep": sweep, "trials": trials, "table": table, "seconds": seconds, "out": out,
                   "namespace": ns, "name": name}
    finally:
        stack.uninstall()
        core.delete_namespace(ns, propagation_policy="Background")


def test_the_sweep_ends_with_a_best_trial_that_passed_the_gate(finished_sweep):
    status = finished_sweep["sweep"]["status"]
    print(f"sweep-cpu took {finished_sweep['seconds']:.0f} s")
    assert status["phase"] == "Succeeded", json.dumps(status, indent=1)[:4000]
    best = {t["metadata"]["name"]: t for t in finished_sweep["trials"]}[status["best"]["name"]]
    results = best["status"]["results"]
    assert best["status"]["phase"] == "Succeeded" and results["gatePassed"] is True
    assert results["mathAccuracy"] == pytest.approx(status["best"]["objective"])
    assert status["counts"]["total"] == 4 and status["counts"]["running"] == 0
    ranked = [row["objective"] for row in status["leaderboard"]]
    assert ranked == sorted(ranked, reverse=True) and status["leaderboard"][0]["name"] == status["best"]["name"]


def test_no_trial_was_made_twice(finished_sweep):
    name = finished_sweep["name"]
    made = sorted(t["metadata"]["name"] for t in finished_sweep["trials"])
    assert made == [f"{name}-{n}" for n in range(4)]
    assert [t["name"] for t in finished_sweep["sweep"]["status"]["trials"]] == made


def test_each_data_recipe_was_prepared_once(finished_sweep):
    """The trials differ in data.mix[0].count (two recipes) and in training settings: per recipe one
    trial built prepare's and tokenize's outputs, the others reused them."""
    by_recipe = defaultdict(list)
    for trial in finished_sweep["trials"]:
        by_recipe[trial["spec"]["data"]["mix"][0]["count"]].append(trial)
    for count, trials in by_recipe.items():
        caches = [t["status"]["results"]["dataCache"] for t in trials]
        builders = [t["metadata"]["name"] for t, c in zip(trials, caches) if not c["prepareReused"]]
        assert len(builders) == 1, (count, caches)
        assert len({c["key"] for c in caches}) == 1
        for cache in caches:
            if cache["prepareReused"]:
                assert cache["tokenizeReused"] and cache["builtBy"] == builders[0]


def test_kubectl_get_mfts_showed_the_trials_progress(finished_sweep):
    # The TRIALS column (done/maxTrials); the rows before the first status have empty columns.
    done = [token for row in finished_sweep["table"] for token in row.split() if re.fullmatch(r"\d+/\d+", token)]
    assert done and done[-1] == "4/4" and len(set(done)) >= 3, finished_sweep["table"]


def test_the_report_renders_in_chromium_with_every_trial(finished_sweep, tmp_path):
    from mathtune_operator.plugin.sweep_report import write_report

    written = write_report(finished_sweep["sweep"], tmp_path / "report")
    dumped = chromium.headless(tmp_path, "--dump-dom", written["html"].resolve().as_uri())
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    dom = chromium.TrialRows()
    dom.feed(dumped.stdout)
    assert sorted(dom.rows) == [f"trial-{n}" for n in range(4)] and len(dom.images) == 3
    for trial in finished_sweep["trials"]:
        assert trial["metadata"]["name"] in dumped.stdout
