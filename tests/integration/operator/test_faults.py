"""The faults a cluster really has, each across a whole run on the real
control plane (stage pods played on kwok's nodes): the API server
restarted, the operator killed again and again, two operators at once, a
user deleting a running stage's Job, a stage pod deleted after it
succeeded. After each: the run Succeeded, no stage ran twice unless its
result was truly lost, no result is missing, the status is not stuck."""
import random
import threading
import time

import pytest

from hack.cluster import local

from . import helpers as h

pytestmark = [pytest.mark.integration, pytest.mark.faults]

# run-cpu.yaml exports: eight stages.
STAGES = ["prepare", "tokenize", "train", "merge", "evaluate", "predict", "report", "export"]


def _start(apis, namespace, volumes, name):
    h.bind_work_volume(apis["core"], namespace, f"{name}-work", volumes)
    h.create_run(apis["custom"], namespace, h.run_doc("run-cpu.yaml", name))


def _play(apis, namespace, name, stages=STAGES, after=None, timeout=120, played=None):
    """Finishes each stage's pod; `played` collects the UID of the Job each finished pod belonged to."""
    for stage in stages:
        pod = h.finish_stage(apis["core"], namespace, f"{name}-{stage}", 0, h.result(stage), timeout=timeout)
        if played is not None:
            played[f"{name}-{stage}"] = pod.metadata.owner_references[0].uid
        if after:
            after(stage)


def _created_once(apis, namespace, name, played):
    """Each stage's Job is the one whose pod was played: none was made again (what the StageStarted
    Events mean, without counting Event objects an operator killed mid-post may never have written)."""
    now = {j.metadata.name: j.metadata.uid for j in h.jobs_of(apis["batch"], namespace, name)}
    assert now == played, {job: (played.get(job), uid) for job, uid in now.items() if played.get(job) != uid}


def _pods_of(core, namespace, job):
    return core.list_namespaced_pod(namespace, label_selector=f"batch.kubernetes.io/job-name={job}").items


def _assert_whole(apis, namespace, name, touched=()):
    """Succeeded, one Job per stage, each stage's pod run once (except the
    stages whose Job or pod the test deleted), every result in status."""
    core, batch, custom = apis["core"], apis["batch"], apis["custom"]
    run = h.wait_phase(custom, namespace, name, "Succeeded", 120)
    jobs = sorted(j.metadata.name for j in h.jobs_of(batch, namespace, name))
    assert jobs == sorted(f"{name}-{s}" for s in STAGES)
    for stage in STAGES:
        if stage in touched:
            continue
        pods = _pods_of(core, namespace, f"{name}-{stage}")
        assert len(pods) == 1, f"stage {stage} ran {len(pods)} times: {[p.metadata.name for p in pods]}"
    status = run["status"]
    assert [r["state"] for r in status["stages"]] == ["Succeeded"] * len(STAGES)
    results = status["results"]
    assert results["rows"]["read"] == 809993 and results["bestEpoch"] == 5 and results["gatePassed"] is True
    assert results["mathAccuracy"] == pytest.approx(0.8475) and status["stage"] == "Done"
    assert h.condition(run, "Ready")["reason"] == "RunSucceeded"
    return run


def test_the_api_server_restarted_mid_run(namespace, apis, admin_operator, volumes, kubeconfig):
    operator = admin_operator
    name = "apirestart"
    _start(apis, namespace, volumes, name)

    def restart_after_tokenize(stage):
        if stage == "tokenize":
            local.restart_apiserver(kubeconfig)

    _play(apis, namespace, name, after=restart_after_tokenize)
    _assert_whole(apis, namespace, name)
    assert operator.proc.poll() is None, "the operator died with the API server"


def test_the_operator_killed_at_random_moments_ten_times_across_a_run(namespace, apis, operator, volumes):
    name = "tenkills"
    _start(apis, namespace, volumes, name)
    chance = random.Random(20261201)
    kills = []

    def killer():
        for _ in range(10):
            time.sleep(chance.uniform(0.2, 2.5))
            operator.kill()
            kills.append(time.monotonic())
            time.sleep(chance.uniform(0.0, 1.0))  # down for a moment: the stage may end meanwhile
            operator.start()

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        for i, stage in enumerate(STAGES):
            # The kills spread across the run: the i-th stage ends only after its share of them.
            share = (i + 1) * 10 // len(STAGES)
            h.wait(lambda share=share: len(kills) >= share, 120, f"{share} kills before {stage} ends")
            _play(apis, namespace, name, stages=[stage], timeout=180)
        ended = time.monotonic()
    finally:
        thread.join(120)
    assert len(kills) == 10 and operator.starts == 11
    assert max(kills) < ended, "every kill happened while the run was still going"
    _assert_whole(apis, namespace, name)


def test_two_operators_at_once_one_leads_and_the_other_takes_over(namespace, apis, operator, volumes, kubeconfig,
                                                                  tmp_path):
    standby = h.Operator(operator.kubeconfig, namespace, tmp_path, identity="operator-1").start()
    try:
        name = "twoops"
        _start(apis, namespace, volumes, name)
        played = {}
        _play(apis, namespace, name, stages=STAGES[:3], played=played)
        leaders = [op for op in (operator, standby) if "mathtune_operator_leader 1.0" in op.metrics()]
        assert len(leaders) == 1, "exactly one operator holds the Lease"
        leaders[0].kill()  # the leader dies without giving the Lease up: the other waits out its 15 s
        _play(apis, namespace, name, stages=STAGES[3:], timeout=120, played=played)
        _assert_whole(apis, namespace, name)
        survivor = standby if leaders[0] is operator else operator
        assert "mathtune_operator_leader 1.0" in survivor.metrics()
        _created_once(apis, namespace, name, played)  # each stage started once, by one operator
    finally:
        standby.stop()


def test_a_user_deleting_a_running_stages_job(namespace, apis, operator, volumes):
    core, batch = apis["core"], apis["batch"]
    name = "deljob"
    _start(apis, namespace, volumes, name)
    _play(apis, namespace, name, stages=STAGES[:2])
    h.running_pod(core, namespace, f"{name}-train")
    batch.delete_namespaced_job(f"{name}-train", namespace, propagation_policy="Background")  # kubectl delete job
    h.wait(lambda: "StageRestarted" in h.events_of(core, namespace, name), 60, "the train Job created again")
    _play(apis, namespace, name, stages=STAGES[2:])
    _assert_whole(apis, namespace, name, touched=("train",))


def test_a_stage_pod_deleted_after_it_succeeded(namespace, apis, operator, volumes):
    core, custom = apis["core"], apis["custom"]
    name = "delpod"
    _start(apis, namespace, volumes, name)
    # Deleted after the operator recorded its result: nothing to do.
    _play(apis, namespace, name, stages=["prepare"])
    h.wait_run(custom, namespace, name, lambda r: h.stage_row(r, "prepare").get("state") == "Succeeded",
               "prepare recorded")
    (pod,) = _pods_of(core, namespace, f"{name}-prepare")
    core.delete_namespaced_pod(pod.metadata.name, namespace, grace_period_seconds=0)
    # Deleted before the operator read it (it was down): the result is gone
    # with the pod, so the stage runs again instead of failing the run.
    h.running_pod(core, namespace, f"{name}-tokenize")
    operator.kill()
    h.finish_stage(core, namespace, f"{name}-tokenize", 0, h.result("tokenize"))
    h.wait(lambda: h.jobs_of(apis["batch"], namespace, name) and all(
        (j.status.succeeded or 0) == 1 for j in h.jobs_of(apis["batch"], namespace, name)
        if j.metadata.name.endswith("-tokenize")), 60, "the tokenize Job complete")
    (pod,) = _pods_of(core, namespace, f"{name}-tokenize")
    core.delete_namespaced_pod(pod.metadata.name, namespace, grace_period_seconds=0)
    h.wait(lambda: not _pods_of(core, namespace, f"{name}-tokenize"), 60, "the tokenize pod gone")
    operator.start()
    h.wait(lambda: "ResultLost" in h.events_of(core, namespace, name), 60, "the lost result noticed")
    jobs_before = {j.metadata.name: j.metadata.uid for j in h.jobs_of(apis["batch"], namespace, name)}
    played = {}
    _play(apis, namespace, name, stages=STAGES[1:], played=played)
    _assert_whole(apis, namespace, name, touched=("prepare", "tokenize"))
    # The lost result made tokenize's Job again (the one cause for a second Job); every Job now is the
    # one whose pod ran, and prepare's is the first.
    _created_once(apis, namespace, name, {**played, f"{name}-prepare": jobs_before[f"{name}-prepare"]})


def test_a_stale_watched_run_never_overwrites_an_earlier_leaders_status(namespace, apis, volumes, crd, drained,
                                                                        kubeconfig, monkeypatch):
    """A run this process has not patched is passed over as its watch showed
    it, without a GET; if another writer (an earlier leader) changed it
    since, the status patch is refused (it carries the resourceVersion
    read) and the next pass reads the run again."""
    from mathtune_operator import runtime
    from mathtune_operator.settings import Settings

    custom = apis["custom"]
    name = "stale"
    _start(apis, namespace, volumes, name)
    watched = custom.get_namespaced_custom_object(h.GROUP, h.VERSION, namespace, h.PLURAL, name)
    earlier = {"phase": "Running", "observedGeneration": 99}  # an earlier leader's mark
    custom.patch_namespaced_custom_object_status(h.GROUP, h.VERSION, namespace, h.PLURAL, name, {"status": earlier})

    from kubernetes import config

    monkeypatch.setattr(runtime, "_api", lambda settings: config.new_client_from_config(str(kubeconfig)))
    # No workers and no kopf: the test alone passes over the run.
    controller = runtime.Controller(Settings(leader_election=False, workers=0), [namespace])
    controller.start()
    try:
        key = (namespace, name)
        controller.seen("ADDED", namespace, name, watched["metadata"]["generation"], watched)
        assert controller._pass(key) == 0.0, "the stale body's patch should be refused and the run passed again"
        stored = custom.get_namespaced_custom_object(h.GROUP, h.VERSION, namespace, h.PLURAL, name)["status"]
        assert stored == earlier, "the stale body's status was written over the stored one"
        controller._pass(key)  # reads the run again, and goes on from there
        stored = custom.get_namespaced_custom_object(h.GROUP, h.VERSION, namespace, h.PLURAL, name)["status"]
        assert stored["stage"] == "prepare" and stored["stages"][0]["state"] == "Running", stored
    finally:
        controller.shutdown()
