"""What the informers keep of a pod or Job, and which changes wake a run
(the list/watch itself runs against the real API server in
tests/integration/operator)."""
from mathtune_operator import informer, names


def pod(phase="Running", ip="10.0.0.5", ready=True, state=None):
    return {"metadata": {"name": "r-train-abc", "namespace": "ns", "resourceVersion": "41",
                         "labels": {names.LABEL_RUN: "r", "batch.kubernetes.io/job-name": "r-train"},
                         "annotations": {"batch.kubernetes.io/job-completion-index": "0", "other": "x",
                                         "huawei.com/AscendReal": "Ascend910-2,Ascend910-3"},
                         "managedFields": [{"manager": "kubelet"}]},
            "spec": {"containers": [{"name": "stage", "image": "img"}], "nodeName": "n1"},
            "status": {"phase": phase, "podIP": ip,
                       "conditions": [{"type": "Ready", "status": str(ready)},
                                      {"type": "PodScheduled", "status": "True"}],
                       "containerStatuses": [{"name": "stage", "ready": ready, "imageID": "sha256:1",
                                              "state": state or {"running": {}}}]}}


def test_a_pod_is_trimmed_to_what_a_pass_reads():
    kept = informer.trim_pod(pod())
    # The NPUs it holds and its node: an NPU fault there stops it (reconcile/device_fault.py).
    assert kept["metadata"]["annotations"] == {"batch.kubernetes.io/job-completion-index": "0",
                                               "huawei.com/AscendReal": "Ascend910-2,Ascend910-3"}
    assert "managedFields" not in kept["metadata"] and kept["spec"] == {"nodeName": "n1"}
    assert kept["status"]["conditions"] == [{"type": "PodScheduled", "status": "True"}]
    assert kept["status"]["containerStatuses"] == [{"name": "stage", "state": {"running": {}}}]


def test_only_changes_a_pass_can_see_wake_the_run():
    woken = []
    inf = informer.Informer("pods", None, "ns", "", informer.trim_pod, lambda ns, run: woken.append((ns, run)))
    inf._apply("ADDED", pod())
    inf._apply("MODIFIED", pod(ip="10.0.0.6", ready=False))  # nothing a pass reads
    assert woken == [("ns", "r")]
    done = {"terminated": {"exitCode": 0, "message": "{}"}}
    inf._apply("MODIFIED", pod(phase="Succeeded", state=done))
    inf._apply("DELETED", pod(phase="Succeeded", state=done))
    assert woken == [("ns", "r")] * 3
    assert inf.get("ns", "r-train-abc") is None


def test_a_job_keeps_its_owner_suspend_outcome_and_attempt_not_its_template():
    job = {"metadata": {"name": "r-train", "namespace": "ns", "uid": "u", "ownerReferences": [{"uid": "run"}],
                        "labels": {names.LABEL_RUN: "r"},
                        "annotations": {names.ANNOTATION_ATTEMPT: "2", "mathtune.dev/generation": "1"}},
           "spec": {"suspend": False, "template": {"spec": {"containers": [{"name": "stage"}]}}},
           "status": {"active": 1, "ready": 1, "failed": 1, "startTime": "t"}}
    kept = informer.trim_job(job)
    assert kept["spec"] == {"suspend": False} and kept["metadata"]["ownerReferences"] == [{"uid": "run"}]
    assert kept["status"] == {"failed": 1, "startTime": "t"}
    # Which attempt of multi-node training it is decides whether one more may start.
    assert kept["metadata"]["annotations"] == {names.ANNOTATION_ATTEMPT: "2"}


def test_a_jobs_pods_come_from_the_index_and_follow_changes():
    inf = informer.Informer("pods", None, "ns", "", informer.trim_pod, lambda ns, run: None,
                            index_label="batch.kubernetes.io/job-name")
    inf._apply("ADDED", pod())
    other = pod()
    other["metadata"] = dict(other["metadata"], name="r-merge-x",
                             labels={names.LABEL_RUN: "r", "batch.kubernetes.io/job-name": "r-merge"})
    inf._apply("ADDED", other)
    assert [p["metadata"]["name"] for p in inf.select("ns", "batch.kubernetes.io/job-name", "r-train")] == \
        ["r-train-abc"]
    assert inf.select("other-ns", "batch.kubernetes.io/job-name", "r-train") == []
    inf._apply("DELETED", pod())
    assert inf.select("ns", "batch.kubernetes.io/job-name", "r-train") == []
    assert len(inf.select("ns", "batch.kubernetes.io/job-name", "r-merge")) == 1


def test_a_device_info_change_is_routed_not_taken_for_a_runs():
    """ConfigMaps no run owns: the route decides who to wake, and a ConfigMap
    that is not a node's device info keeps only its name (its changes wake nobody)."""
    from mathtune_operator import device_health

    routed, woken = [], []
    inf = informer.Informer("configmaps", None, "kube-system", "", device_health.trim,
                            lambda ns, run: woken.append((ns, run)), route=routed.append)
    info = {"metadata": {"name": "mindx-dl-deviceinfo-n1", "namespace": "kube-system"},
            "data": {"DeviceInfoCfg": "{}"}}
    inf._apply("ADDED", info)
    inf._apply("ADDED", {"metadata": {"name": "other", "namespace": "kube-system"}, "data": {"a": "1"}})
    inf._apply("MODIFIED", {"metadata": {"name": "other", "namespace": "kube-system"}, "data": {"a": "2"}})
    assert [o["metadata"]["name"] for o in routed] == ["mindx-dl-deviceinfo-n1", "other"] and woken == []
    assert inf.get("kube-system", "mindx-dl-deviceinfo-n1")["data"] == {"DeviceInfoCfg": "{}"}
