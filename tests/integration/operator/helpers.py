"""Helpers of the operator's cluster tests: the CRD, a real operator process,
a statically bound work volume, and playing a stage pod to its end."""
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, List, Optional, Tuple

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from hack.cluster import local
from tests.harness import podsim
from tests.harness.ports import free_port
from tests.waiting import create_test_namespace, wait_for

REPO = Path(__file__).resolve().parents[3]
CRD = REPO / "crds" / "mathtune.dev_mathfinetunes.yaml"
SWEEP_CRD = REPO / "crds" / "mathtune.dev_mathfinetunesweeps.yaml"
EXAMPLES = REPO / "examples"
GROUP, VERSION, PLURAL = "mathtune.dev", "v1alpha1", "mathfinetunes"
# A class nothing provisions: each test binds its claim to a PV it makes.
STATIC_CLASS = "mathtune-test-static"


def wait(predicate: Callable, timeout: float = 90, what: str = "condition", every: float = 0.3):
    return wait_for(predicate, timeout=timeout, what=what, every=every)


def apply_crd(kubeconfig: Path) -> None:
    for path, name in ((CRD, "mathfinetunes"), (SWEEP_CRD, "mathfinetunesweeps")):
        local.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path), kubeconfig=kubeconfig)
        # Right after a fresh API server starts, `kubectl wait` can fail at
        # once (the CRD not yet in its cache) instead of waiting: ask again.
        deadline = time.monotonic() + 60
        while True:
            done = local.kubectl("wait", "--for", "condition=Established", "--timeout=60s",
                                 f"crd/{name}.mathtune.dev", kubeconfig=kubeconfig, check=False)
            if done.returncode == 0:
                break
            assert time.monotonic() < deadline, f"crd/{name}.mathtune.dev not Established: {done.stderr}"
            time.sleep(1)


class Operator:
    """The operator as a real process (`mathtune-operator`), watching one
    namespace: killing it is a real crash, starting it again a real restart."""

    def __init__(self, kubeconfig: Path, namespace: str, log_dir: Path, identity: str = "operator-0"):
        self.kubeconfig, self.namespace, self.log_dir, self.identity = kubeconfig, namespace, log_dir, identity
        self.port = free_port()
        self.proc: Optional[subprocess.Popen] = None
        self.starts = 0

    def start(self) -> "Operator":
        self.starts += 1
        # No reconcile interval: passes follow the runs' Jobs and pods. The
        # leader Lease lives in the test's namespace (where the `chart_account`
        # fixture installs the chart, whose Role grants it), and a restarted
        # process keeps its identity, as a pod of a StatefulSet would, so it
        # takes its own Lease back at once instead of waiting for it to expire.
        env = dict(os.environ, KUBECONFIG=str(self.kubeconfig), MATHTUNE_PROGRESS_INTERVAL="1",
                   PYTHONUNBUFFERED="1", POD_NAMESPACE=self.namespace, POD_NAME=self.identity)
        exe = Path(sys.executable).parent / "mathtune-operator"
        self.log = self.log_dir / f"{self.identity}-{self.starts}.log"
        self.proc = subprocess.Popen([str(exe), "--namespace", self.namespace, "--metrics-port", str(self.port),
                                      "--verbose"], env=env, stdout=self.log.open("w"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait(self._serving, 60, "the operator's metrics endpoint")
        return self

    def _serving(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"operator exited {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2).read()
            return True
        except OSError:
            return False

    def metrics(self) -> str:
        return urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5).read().decode()

    def kill(self) -> None:
        """SIGKILL: no cleanup, exactly like a crashed or evicted pod."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def logs(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.log_dir.glob(f"{self.identity}-*.log")))


# Stage pods of these tests are played by the test (podsim), so they must land
# on kwok's simulated nodes, which carry kwok's own taint; the real node would
# really run them.
KWOK_TOLERATION = {"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}
KWOK_SELECTOR = {"type": "kwok"}


def run_doc(example: str, name: str, **spec_updates) -> dict:
    doc = yaml.safe_load((EXAMPLES / example).read_text())
    doc["metadata"] = {"name": name}
    doc["spec"].setdefault("storage", {})["storageClassName"] = STATIC_CLASS
    doc["spec"]["storage"]["size"] = "1Gi"
    for dotted, value in spec_updates.items():
        node = doc["spec"]
        parts = dotted.split("__")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    scheduling = doc["spec"].setdefault("scheduling", {})
    scheduling["nodeSelector"] = {**KWOK_SELECTOR, **(scheduling.get("nodeSelector") or {})}
    scheduling["tolerations"] = [*(scheduling.get("tolerations") or []), KWOK_TOLERATION]
    return doc


def multi_node_doc(name: str, nodes: int = 2) -> dict:
    """Seed 000 trained on `nodes` whole Ascend servers (8 NPUs each, model parallel 4)."""
    doc = run_doc("seed000-llama3-quota-cot.yaml", name)
    doc["spec"]["resources"] = {"npusPerNode": 8, "nodes": nodes,
                                "parallel": {"dataParallel": 2 * nodes, "modelParallel": 4, "pipelineStage": 1}}
    return doc


def bind_work_volume(core: client.CoreV1Api, namespace: str, claim: str, created: List[str]) -> None:
    """A PV pre-bound to the claim the operator will create."""
    name = f"pv-{namespace}-{claim}"[:63]
    core.create_persistent_volume({
        "metadata": {"name": name, "labels": {"mathtune.dev/test": "true"}},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce", "ReadWriteMany"],
                 "persistentVolumeReclaimPolicy": "Retain", "storageClassName": STATIC_CLASS,
                 "hostPath": {"path": f"/tmp/mathtune-test/{name}"},
                 "claimRef": {"namespace": namespace, "name": claim}}})
    created.append(name)


def create_run(custom: client.CustomObjectsApi, namespace: str, doc: dict) -> dict:
    return custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, doc)


def get_run(custom: client.CustomObjectsApi, namespace: str, name: str) -> dict:
    return custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)


def wait_run(custom: client.CustomObjectsApi, namespace: str, name: str, predicate: Callable[[dict], Any],
             what: str, timeout: float = 60) -> dict:
    """The run, read again and again until `predicate(run)` holds."""
    def check():
        run = get_run(custom, namespace, name)
        return run if predicate(run) else None

    return wait(check, timeout, what)


def wait_phase(custom: client.CustomObjectsApi, namespace: str, name: str, phase: str, timeout: float = 60) -> dict:
    return wait_run(custom, namespace, name, lambda r: (r.get("status") or {}).get("phase") == phase,
                    f"run {phase}", timeout)


def patch_run(custom: client.CustomObjectsApi, namespace: str, name: str, body: dict) -> dict:
    return custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name, body)


def stage_row(run: dict, stage: str) -> dict:
    for row in (run.get("status") or {}).get("stages") or []:
        if row["name"] == stage:
            return row
    return {}


def condition(run: dict, ctype: str) -> dict:
    for cond in (run.get("status") or {}).get("conditions") or []:
        if cond["type"] == ctype:
            return cond
    return {}


def live_pods(core: client.CoreV1Api, namespace: str, job: str) -> list:
    pods = core.list_namespaced_pod(namespace, label_selector=f"batch.kubernetes.io/job-name={job}").items
    return [p for p in pods if p.metadata.deletion_timestamp is None and p.status.phase in ("Pending", "Running")]


def running_pod(core: client.CoreV1Api, namespace: str, job: str, timeout: float = 90):
    def find():
        pods = [p for p in live_pods(core, namespace, job) if p.status.phase == "Running"]
        return pods[0] if pods else None
    return wait(find, timeout, f"a Running pod of Job {job}")


def finish_stage(core: client.CoreV1Api, namespace: str, job: str, exit_code: int, result: dict,
                 timeout: float = 90):
    """Plays the stage's pod to its end, with the stage's result JSON as the
    termination message (what mathtune-pipeline writes)."""
    pod = running_pod(core, namespace, job, timeout)
    podsim.complete_pod(core, namespace, pod.metadata.name, exit_code, json.dumps(result))
    return pod


def write_pod_log(custom: client.CustomObjectsApi, pod, path: Path, lines: List[str]) -> None:
    """The pod's stdout as kwok serves it: a CRI-format log file named by a
    kwok `Logs` object (kwok then serves it as a kubelet serves a container's log)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime())
    path.write_text("".join(f"{stamp} stdout F {line}\n" for line in lines))
    body = {"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Logs",
            "metadata": {"name": pod.metadata.name, "namespace": pod.metadata.namespace},
            "spec": {"logs": [{"containers": ["stage"], "logsFile": str(path), "follow": False}]}}
    try:
        custom.create_namespaced_custom_object("kwok.x-k8s.io", "v1alpha1", pod.metadata.namespace, "logs", body)
    except ApiException as exc:
        if exc.status != 409:
            raise


def jobs_of(batch: client.BatchV1Api, namespace: str, run: str) -> list:
    return batch.list_namespaced_job(namespace, label_selector=f"mathtune.dev/run={run}").items


def events_of(core: client.CoreV1Api, namespace: str, name: str) -> List[str]:
    events = core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}").items
    return [e.reason for e in events]


# Results as the real stages report them (numbers from the contest runs).
RESULTS = {
    "prepare": {"rows": {"read": 809993, "bad": 0, "deduped": 548942, "sampled": 97450, "other": 0,
                         "classified": {"english": 9993, "add": 90113, "subtract": 89366, "multiply": 89902,
                                        "divide": 89966, "sqrt": 39227, "power": 39207, "equation": 40080,
                                        "discount": 6275, "mean": 19709, "mass": 100, "area": 8665,
                                        "sales": 6266, "simplify": 45, "function": 20028}},
                "outputs": {"train": "prepare/train.jsonl"}},
    "tokenize": {"rows": 97450, "seqLength": 512, "truncated": 0, "paddingShare": 0.83, "shards": 1},
    "train": {"epochs": 5, "steps": 15225, "finalLoss": 0.2031, "trainableParams": 3407872,
              "totalParams": 8033669120, "checkpoints": [1, 2, 3, 4, 5]},
    "merge": {"epochs": [1, 2, 3, 4, 5], "adapter": "/data/runs/r/merge/adapter", "merged": "/data/runs/r/merge/full"},
    "evaluate": {"base": {"f1": 59.87, "em": 44.17},
                 "epochs": {"1": {"f1": 60.41, "em": 45.02}, "2": {"f1": 58.9, "em": 43.1},
                            "3": {"f1": 57.2, "em": 41.6}, "4": {"f1": 56.0, "em": 40.9}, "5": {"f1": 55.1, "em": 40.2}}},
    "predict": {"epochs": {"1": {"accuracy": 0.6125, "perType": {"add": 0.9, "mean": 0.7}},
                           "5": {"accuracy": 0.8475, "perType": {"add": 0.98, "mean": 0.91}}}},
    "report": {"bestEpoch": 5, "f1": 55.1, "em": 40.2, "mathAccuracy": 0.8475, "mathAccuracyContestRule": 0.8125,
               "perType": {"add": 0.98, "mean": 0.91}, "trainableParams": 3407872, "totalParams": 8033669120,
               "lowParamRatio": 3407872 / 8033669120, "gatePassed": True,
               "artifacts": {"report": "/data/runs/r/report/report.json", "plot": "/data/runs/r/report/loss.png"}},
    "export": {"epoch": 5, "formats": ["peft", "hf"], "baseModel": "meta-llama/Meta-Llama-3-8B",
               "artifacts": [{"format": "peft", "location": "export/peft", "bytes": 13647952, "files": 3,
                              "sha256": "0c44406cc663a3ee2fc0f1dc7b80144a7e937fed9335524d890694dccb8d5a4e"},
                             {"format": "hf", "location": "export/hf", "bytes": 16069719520, "files": 13,
                              "sha256": "3ea572ec4fcf5a50cd71f4ad3c93ce5bfd1f675fed7353b7fbbbb64435add8d0"}]},
}


def result(stage: str, **extra) -> dict:
    return {"stage": stage, "ok": True, **RESULTS[stage], **extra}


@contextmanager
def scratch_namespace(k8s_api, prefix: str) -> Iterator[Tuple[str, client.CustomObjectsApi]]:
    """A namespace of its own for a module's dry runs, deleted after: (name, custom objects API)."""
    name = f"{prefix}-{uuid.uuid4().hex[:5]}"
    core = client.CoreV1Api(k8s_api)
    create_test_namespace(core, name)
    try:
        yield name, client.CustomObjectsApi(k8s_api)
    finally:
        core.delete_namespace(name, propagation_policy="Background")
