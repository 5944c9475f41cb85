"""The real node's faults under a real CPU run: `make chaos` runs this at the
same time as tests/integration/operator/test_chaos.py (whose stages are
played on kwok, and whose API server and etcd restarts then land on this
run too; hack/cluster/chaos.sh); `make test` does not (minutes of real
training, and the kubelet stopped would stall every other test's real-node
pods).

examples/run-cpu.yaml runs with the chart's operator on the real node, its
stage pods in the pipeline-cpu image (MindSpore on CPU), while:

- its work volume fills while training checkpoints: the volume is a tmpfs
  mounted on the claim's directory before the run starts, and once two
  epochs are saved a ballast file takes all but BALLAST_LEAVES bytes of it.
  The next save fails with ENOSPC. The ballast is removed as soon as the
  failed attempt is seen (the disk freed, as an administrator would), and
  the retry must resume from the last complete save: nothing produced is
  lost.
- the node's kubelet is stopped for KUBELET_DOWN_SECONDS while a later stage
  runs (containerd keeps its container running), then started again.

The run must succeed with its gate passed, no stage but train run twice, and
train twice exactly (its one ENOSPC), its failed attempt's message naming the
full disk. One table is printed (and written to MATHTUNE_CHAOS_NODE_REPORT)."""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Dict, List, Optional

import pytest
import yaml
from kubernetes import client

from hack.cluster import demo
from mathtune_pipeline.disk import free_bytes
from tests.waiting import create_test_namespace, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.mindspore, pytest.mark.chaos]

REPO = Path(__file__).resolve().parents[2]
NODE_STATE = Path("/run/mathtune-node")
KUBELET_DOWN_SECONDS = 60
BALLAST = ".chaos-ballast"
BALLAST_LEAVES = 256 * 1024  # bytes left free: less than one rank's save of the tiny model
VOLUME_SIZE = "1g"  # the tmpfs: the example's claim asks 1Gi
EPOCHS_SAVED_BEFORE_THE_FULL_DISK = 2
RUN_TIMEOUT = 25 * 60
STAGES = ["prepare", "tokenize", "train", "merge", "evaluate", "predict", "report", "export"]
REPORT = os.environ.get("MATHTUNE_CHAOS_NODE_REPORT")
# Written once the run is applied: `make chaos` (hack/cluster/chaos.sh) starts
# the played runs' faults then, so they land on this run's stages, not its setup.
STARTED = os.environ.get("MATHTUNE_CHAOS_NODE_STARTED")


def _through_faults(read, *args):
    """A read retried while the played runs' faults restart the API server (make chaos runs both at once)."""
    deadline = time.monotonic() + 120
    while True:
        try:
            return read(*args)
        except Exception:  # noqa: BLE001 - refused, reset or timed out while the API server restarts
            if time.monotonic() > deadline:
                raise
            time.sleep(2)


def _mount_tmpfs(volume: Path) -> None:
    """The claim's directory becomes a tmpfs holding what was seeded into it."""
    aside = Path(tempfile.mkdtemp(prefix="chaos-volume-"))
    # cp -a both ways: the stage pods' user (10001) must still own what it wrote.
    subprocess.run(["cp", "-a", f"{volume}/.", str(aside)], check=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={VOLUME_SIZE},mode=0777", "tmpfs", str(volume)], check=True)
    subprocess.run(["cp", "-a", f"{aside}/.", str(volume)], check=True)
    shutil.rmtree(aside)


def _fill(volume: Path) -> int:
    """All but BALLAST_LEAVES bytes of the volume taken by one file; its size."""
    size = max(0, free_bytes(volume) - BALLAST_LEAVES)
    with open(volume / BALLAST, "wb") as ballast:
        os.posix_fallocate(ballast.fileno(), 0, size)
    return size


def _saved_epochs(volume: Path, run: str) -> int:
    rank0 = volume / "runs" / run / "train.work" / "output" / "checkpoint" / "rank_0"
    return len(list(rank0.glob("*.ckpt"))) if rank0.is_dir() else 0


def _pods(core, ns: str, run: str, stage: str) -> List[client.V1Pod]:
    return _through_faults(lambda: core.list_namespaced_pod(
        ns, label_selector=f"mathtune.dev/run={run},mathtune.dev/stage={stage}").items)


def _failed_message(pod: client.V1Pod) -> str:
    """The error of the failed attempt's result (its termination message)."""
    for status in pod.status.container_statuses or []:
        terminated = status.state.terminated if status.state else None
        if terminated and terminated.exit_code:
            try:
                return str(json.loads(terminated.message or "{}").get("error") or "")
            except ValueError:
                return terminated.message or ""
    return ""


def _kubelet_pid() -> int:
    return int((NODE_STATE / "kubelet.pid").read_text())


def _node_ready(core) -> str:
    node = _through_faults(core.read_node, "mathtune-node")
    return next((c.status for c in node.status.conditions or [] if c.type == "Ready"), "")


@pytest.fixture(scope="module")
def chaos_run(kubeconfig, k8s_api, tmp_path_factory, demo_inputs):
    core = client.CoreV1Api(k8s_api)
    custom = client.CustomObjectsApi(k8s_api)
    ns = create_test_namespace(core, f"chaos-node-{uuid.uuid4().hex[:6]}")
    out = tmp_path_factory.mktemp("chaos-node")
    doc = yaml.safe_load(demo.EXAMPLE.read_text())
    doc["metadata"]["namespace"] = ns
    name = doc["metadata"]["name"]
    (out / "run.yaml").write_text(yaml.safe_dump(doc))
    stack = demo.Stack(kubeconfig, out, release=f"chaos-{ns[-6:]}", namespace=ns, watch_namespace=ns)
    seen: Dict[str, object] = {}
    volume: Optional[Path] = None
    try:
        with stack:
            claim = demo.seed_work_volume(kubeconfig, doc, ns, made=demo_inputs)
            volume = demo.volume_path(kubeconfig, ns, claim)
            _mount_tmpfs(volume)
            started = time.monotonic()
            demo.kubectl("apply", "-f", str(out / "run.yaml"), kubeconfig=kubeconfig)
            if STARTED:
                Path(STARTED).write_text(ns)

            def read_run():
                return _through_faults(custom.get_namespaced_custom_object, "mathtune.dev", "v1alpha1", ns,
                                       "mathfinetunes", name)

            def unless_failed(predicate):
                """predicate(the run's status), but a run that failed (for another cause than the faults) is
                reported at once, not waited on."""
                def check():
                    status = read_run().get("status") or {}
                    if status.get("phase") == "Failed":
                        raise AssertionError(f"the run failed: {status.get('stages')}")
                    return predicate(status)
                return check

            # The full disk, while training saves epochs.
            wait_for(unless_failed(lambda _: _saved_epochs(volume, name) >= EPOCHS_SAVED_BEFORE_THE_FULL_DISK),
                     15 * 60, f"{EPOCHS_SAVED_BEFORE_THE_FULL_DISK} epochs saved", every=0.2)
            seen["ballast"] = _fill(volume)
            seen["filled_after_epochs"] = _saved_epochs(volume, name)
            failed = wait_for(lambda: [p for p in _pods(core, ns, name, "train") if p.status.phase == "Failed"],
                              10 * 60, "the train attempt to fail on the full disk", every=0.5)
            (volume / BALLAST).unlink()
            seen["failed_message"] = _failed_message(failed[0])

            # The kubelet stopped while a later stage runs.
            def in_evaluate(status) -> bool:
                return status.get("stage") == "evaluate" and any(
                    p.status.phase == "Running" for p in _pods(core, ns, name, "evaluate"))

            wait_for(unless_failed(in_evaluate), 15 * 60, "the evaluate stage running", every=0.5)
            os.kill(_kubelet_pid(), signal.SIGTERM)
            stopped = time.monotonic()
            node_states = set()
            while time.monotonic() - stopped < KUBELET_DOWN_SECONDS:
                node_states.add(_node_ready(core))
                time.sleep(2)
            subprocess.run(["bash", str(REPO / "hack" / "node" / "up.sh")], check=True, capture_output=True)
            seen["kubelet_down_seconds"] = time.monotonic() - stopped
            seen["node_states"] = sorted(node_states)

            seen["mft"] = wait_for(lambda: (lambda run: run if (run.get("status") or {}).get("phase") in (
                "Succeeded", "Failed") else None)(read_run()), RUN_TIMEOUT, "the run to end", every=3)
            seen["seconds"] = time.monotonic() - started
            seen["phase"] = seen["mft"]["status"]["phase"]
            seen["pods"] = {stage: [p.status.phase for p in _pods(core, ns, name, stage)] for stage in STAGES}
            yield seen
    finally:
        if volume is not None and os.path.ismount(volume):
            subprocess.run(["umount", "-l", str(volume)], check=False)
        stack.uninstall()
        core.delete_namespace(ns, propagation_policy="Background")


def test_the_run_survives_a_full_disk_and_a_stopped_kubelet(chaos_run):
    mft = chaos_run["mft"]
    status = mft.get("status") or {}
    rows = {r["name"]: r for r in status.get("stages") or []}
    results = status.get("results") or {}
    resumed = re.search(r"resumed after epoch \d+ \(step \d+\)", rows.get("train", {}).get("summary") or "")
    table = [
        ("run", f"{chaos_run['phase']} in {chaos_run['seconds']:.0f} s, gate passed: {results.get('gatePassed')}"),
        ("full disk", f"filled after {chaos_run['filled_after_epochs']} saved epochs ({chaos_run['ballast'] >> 20} "
                      f"MiB ballast); the attempt failed: {chaos_run['failed_message']}"),
        ("train", f"{rows.get('train', {}).get('attempts')} attempts; the second "
                  f"{resumed.group(0) if resumed else 'did not resume'}"),
        ("kubelet stopped", f"{chaos_run['kubelet_down_seconds']:.0f} s while evaluate ran; the node's Ready "
                            f"condition read {chaos_run['node_states']} meanwhile"),
        ("pods per stage", ", ".join(f"{s} {len(p)}" for s, p in chaos_run["pods"].items())),
    ]
    text = "\n".join(f"| {k} | {v} |" for k, v in table)
    print("\n" + text)
    if REPORT:
        Path(REPORT).parent.mkdir(parents=True, exist_ok=True)
        Path(REPORT).write_text(text + "\n")
    assert chaos_run["phase"] == "Succeeded", str(status)[:3000]
    assert results.get("gatePassed") is True
    assert "No space left on device" in chaos_run["failed_message"], chaos_run["failed_message"]
    assert sorted(chaos_run["pods"]["train"]) == ["Failed", "Succeeded"], chaos_run["pods"]
    assert rows["train"]["attempts"] == 2
    for stage in STAGES:
        if stage != "train":
            assert chaos_run["pods"][stage] == ["Succeeded"], (stage, chaos_run["pods"])


def test_nothing_saved_before_the_full_disk_was_lost(chaos_run):
    """The retry resumed from a save made before the disk filled, not from the start."""
    stages = {r["name"]: r for r in (chaos_run["mft"].get("status") or {}).get("stages") or []}
    summary = stages["train"].get("summary") or ""
    resumed = re.search(r"resumed after epoch (\d+)", summary)
    assert resumed and int(resumed.group(1)) >= EPOCHS_SAVED_BEFORE_THE_FULL_DISK, summary
