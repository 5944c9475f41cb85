"""`make bench-scale`: N concurrent runs of seed 000's recipe on the local
cluster's simulated (kwok) nodes, the operator as a real process.

Every stage pod is completed (with a real stage result as its termination
message) the moment kwok reports it Running. The benchmark watches Jobs,
pods and runs itself and times, per stage boundary:

- total:    stage pod completed -> the next stage's Job seen on a watch;
- Job ctl:  stage pod completed -> its Job `Complete` (Kubernetes' own Job
            controller: the baseline, measured in the same run);
- added:    the Job `Complete` -> the next stage's Job, what the operator adds;
- status:   stage pod completed (and its Job Complete) -> the run's status
            records the stage done (what `kubectl get mft` shows).

It also prints API requests per run-minute (the API server's
apiserver_request_total, all clients, and the operator's share: the
requests only it makes, and its Events counted from the Events), the
operator's peak RSS and CPU seconds, and where a lag is: each watched
write's managedFields time against when a watch saw it, a second watch of
the runs from kubectl in another process, a third straight from etcd
(before the API server), the API server's own time per request, the
events etcd held for watchers reading slower than it wrote, and how busy
the machine was and with what (the control plane, the operator and this
benchmark share its cores).

    BENCH_RUNS=500 .venv/bin/python tests/bench/bench_scale.py     (make bench-scale)

BENCH_KEEP=1 leaves the namespace, runs and simulated nodes behind.
"""
import base64
import calendar
import json
import os
import queue
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import yaml
from kubernetes import client, config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from hack.cluster import local  # noqa: E402
from tests.bench.common import (CRD, cpu_seconds_between, cpu_seconds_by_process,  # noqa: E402
                                machine_busy_ticks, proc_cpu_seconds, settle_apiserver, wait_established)
from tests.harness.ports import free_port  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "500"))
NAMESPACE = "bench-scale"
GROUP, VERSION, PLURAL = "mathtune.dev", "v1alpha1", "mathfinetunes"
# Created (the spec ConfigMap), StageStarted and StageSucceeded for each
# stage, RunSucceeded.
EVENTS_PER_RUN = 16
STAGES = ["prepare", "tokenize", "train", "merge", "evaluate", "predict", "report"]
# Enough simulated 8-NPU servers that no train pod waits for NPUs (that
# would be scheduling, not orchestration), and CPU nodes for the rest.
ASCEND_NODES = max(2, (RUNS * 4) // 8 + 2)
CPU_NODES = max(2, RUNS // 100 + 2)
RESULTS = {json.loads(line)["stage"]: line.strip()
           for line in (REPO / "tests" / "fixtures" / "stage-results-cpu-run.jsonl").read_text().splitlines()}


def now() -> float:
    return time.time()


def parse_stamp(value: str) -> float:
    """An API timestamp (to the second) as epoch seconds."""
    return calendar.timegm(time.strptime(value, "%Y-%m-%dT%H:%M:%SZ"))


def in_windows(samples: List[Tuple[float, Any]]) -> Dict[int, List[Any]]:
    """(seconds from the start, value) grouped by 20 s window, in order:
    when the slow ones happened, a steady cost or a few stalls."""
    out: Dict[int, List[Any]] = defaultdict(list)
    for at, value in sorted(samples, key=lambda sample: sample[0]):
        out[int(at // 20) * 20].append(value)
    return dict(sorted(out.items()))


def written_at(obj: dict, subresource: str) -> Optional[float]:
    """When the API server last stored a write to this subresource, to the
    second (managedFields' time): with the time a watch saw the object, how
    long the API server took to tell its watchers."""
    stamps = [entry.get("time") for entry in (obj.get("metadata") or {}).get("managedFields") or []
              if entry.get("subresource", "") == subresource and entry.get("time")]
    if not stamps:
        return None
    return parse_stamp(max(stamps))


def pct(values: List[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else float("nan")


# -- the simulated cluster's extra nodes and shared volume --------------------------
def bench_nodes() -> List[dict]:
    def node(name: str, npus: int) -> dict:
        capacity = {"cpu": "192", "memory": "1536Gi", "pods": "1000", "ephemeral-storage": "2Ti"}
        labels = {"kubernetes.io/hostname": name, "type": "kwok", "mathtune.dev/bench": "scale"}
        taints = [{"key": "kwok.x-k8s.io/node", "value": "fake", "effect": "NoSchedule"}]
        if npus:
            capacity["huawei.com/Ascend910"] = str(npus)
            labels["accelerator"] = "huawei-Ascend910"
            taints.append({"key": "huawei.com/Ascend910", "value": "present", "effect": "NoSchedule"})
        return {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": name, "annotations": {"kwok.x-k8s.io/node": "fake"}, "labels": labels},
                "spec": {"taints": taints}, "status": {"allocatable": capacity, "capacity": capacity}}
    return ([node(f"bench-ascend-{i}", 8) for i in range(ASCEND_NODES)]
            + [node(f"bench-cpu-{i}", 0) for i in range(CPU_NODES)])


def run_doc(i: int) -> dict:
    doc = yaml.safe_load((REPO / "examples" / "seed000-llama3-quota-cot.yaml").read_text())
    doc["metadata"] = {"name": f"r{i:04d}"}
    doc["spec"]["storage"] = {"pvcName": "bench-work"}
    doc["spec"]["scheduling"] = {
        "nodeSelector": {"mathtune.dev/bench": "scale"},
        "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}]}
    return doc


# -- watching ----------------------------------------------------------------------
RELISTS: Dict[str, int] = defaultdict(int)  # watch -> lists after the first (410 Gone: the watch fell behind)


def watch_raw(name: str, list_call: Callable[..., Any], handler: Callable[[str, dict, float], None],
              stop: threading.Event) -> None:
    """List, then watch from the list's version; handler(type, object, time seen)."""
    version: Optional[str] = None
    listed = False
    while not stop.is_set():
        try:
            if version is None:
                RELISTS[name] += listed
                listed = True
                body = json.loads(list_call(_preload_content=False).data)
                version = body["metadata"]["resourceVersion"]
                for item in body.get("items") or []:
                    handler("ADDED", item, now())
            resp = list_call(watch=True, resource_version=version, allow_watch_bookmarks=True, timeout_seconds=60,
                             _preload_content=False, _request_timeout=(10, 90))
            for line in iter_resp_lines(resp):
                if not line:
                    continue
                seen = now()
                event = json.loads(line)
                if event["type"] == "ERROR":
                    version = None
                    break
                version = event["object"]["metadata"]["resourceVersion"]
                if event["type"] != "BOOKMARK":
                    handler(event["type"], event["object"], seen)
        except Exception as exc:  # noqa: BLE001 - keep watching through hiccups
            if not stop.is_set():
                print(f"bench: watch hiccup: {exc}", file=sys.stderr)
                time.sleep(0.5)


# Lines in, each out with the time it arrived: a process of its own, so
# that what it stamps does not wait for this one's threads.
STAMP_LINES = ("import sys, time\n"
               "while True:\n"
               "    line = sys.stdin.buffer.readline()\n"
               "    if not line: break\n"
               "    sys.stdout.write(f'{time.time():.3f} ' + line.decode())\n"
               "    sys.stdout.flush()\n")


def kubectl_watch(kubeconfig: Path, out: Path) -> List[subprocess.Popen]:
    """A second watch of the runs, kubectl's (Go, another process): when it
    sees an event early that this process's watch sees late, the lag is in
    this process, not in the API server."""
    # Again whenever the API server ends it (as it does a watcher it finds
    # too slow, at bursts): kubectl get --watch then exits.
    watch = subprocess.Popen(["bash", "-c", 'while :; do "$@"; sleep 0.2; done', "kubectl-watch",
                              str(local.KUBECTL), "--kubeconfig", str(kubeconfig), "get", "mft", "-n", NAMESPACE,
                              "--watch", "--output-watch-events", "-o",
                              "jsonpath={.object.metadata.name} {.object.metadata.resourceVersion}{\"\\n\"}"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
    stamp = subprocess.Popen([sys.executable, "-c", STAMP_LINES], stdin=watch.stdout, stdout=out.open("w"))
    return [watch, stamp]


def kubectl_seen(out: Path) -> Dict[tuple, float]:
    """(run, resourceVersion) -> when kubectl's watch printed it."""
    seen: Dict[tuple, float] = {}
    for line in out.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3:
            seen.setdefault((parts[1], parts[2]), float(parts[0]))
    return seen


def etcd_client_url() -> str:
    """The local cluster's etcd, as kwokctl configured it."""
    config = yaml.safe_load_all((local.CACHE / "kwok" / "clusters" / local.CLUSTER_NAME / "kwok.yaml").read_text())
    for doc in config:
        port = ((doc or {}).get("options") or {}).get("etcdPort")
        if port:
            return f"http://127.0.0.1:{port}"
    raise SystemExit("bench-scale: no etcdPort in the local cluster's kwok.yaml")


def etcd_watch(out: Path) -> List[subprocess.Popen]:
    """A watch of the runs straight from etcd (its JSON gateway, curl): when
    etcd tells it of a write early that the API server's watchers hear of
    late, the lag is after etcd: on the API server's watch streams from
    etcd or inside the API server, not in etcd's commit."""
    prefix = f"/registry/{GROUP}/{PLURAL}/{NAMESPACE}/".encode()
    request = {"create_request": {"key": base64.b64encode(prefix).decode(),
                                  "range_end": base64.b64encode(prefix[:-1] + b"0").decode()}}
    watch = subprocess.Popen(["curl", "-sN", f"{etcd_client_url()}/v3/watch", "-d", json.dumps(request)],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    stamp = subprocess.Popen([sys.executable, "-c", STAMP_LINES], stdin=watch.stdout, stdout=out.open("w"))
    return [watch, stamp]


def etcd_seen(out: Path) -> Dict[tuple, float]:
    """(run, resourceVersion) -> when etcd's watch delivered it."""
    seen: Dict[tuple, float] = {}
    for line in out.read_text().splitlines():
        at, _, body = line.partition(" ")
        for event in (json.loads(body).get("result") or {}).get("events") or []:
            kv = event.get("kv") or {}
            name = base64.b64decode(kv.get("key", "")).decode().rsplit("/", 1)[-1]
            seen.setdefault((name, kv.get("mod_revision", "")), float(at))
    return seen


def etcd_pending_events(url: str) -> float:
    """Events etcd holds for watchers that read slower than it writes
    (etcd_debugging_mvcc_pending_events_total): the API server's own watch
    streams, unless this benchmark's etcd watch fell behind too."""
    try:
        text = urllib.request.urlopen(f"{url}/metrics", timeout=2).read().decode()
    except OSError:
        return float("nan")
    found = re.search(r"^etcd_debugging_mvcc_pending_events_total ([0-9.e+]+)$", text, re.M)
    return float(found.group(1)) if found else float("nan")


def sample_machine(stop: threading.Event, into: List[Tuple[float, float, float]]) -> None:
    """Each second: (when, cores busy over that second on the whole
    machine, events etcd holds for slow watchers)."""
    cores, url = os.cpu_count() or 1, etcd_client_url()
    before = machine_busy_ticks()
    while not stop.wait(1.0):
        after = machine_busy_ticks()
        into.append((now(), cores * (after[0] - before[0]) / max(1, after[1] - before[1]), etcd_pending_events(url)))
        before = after


class Recorder:
    def __init__(self, core: client.CoreV1Api):
        self.core = core
        self.lock = threading.Lock()
        self.pod_done: Dict[str, float] = {}  # job name -> when its pod was completed
        self.job_added: Dict[str, float] = {}
        self.job_complete: Dict[str, float] = {}
        self.status_done: Dict[str, float] = {}  # job name -> when the run's status recorded it Succeeded
        self.succeeded: Dict[str, float] = {}  # run -> when Succeeded
        self.completing: "queue.Queue[dict]" = queue.Queue()
        self.queued: set = set()
        self.jobs_created: Dict[str, int] = defaultdict(int)
        # watch -> (seen - the write's managedFields time, seen - start) per event
        self.delivery: Dict[str, List[tuple]] = defaultdict(list)
        self.run_versions: Dict[tuple, float] = {}  # (run, resourceVersion) -> when this process saw it

    def on_job(self, kind: str, job: dict, seen: float) -> None:
        name = job["metadata"]["name"]
        stored = written_at(job, "status")
        with self.lock:
            if stored is not None and kind == "MODIFIED":
                self.delivery["jobs"].append((seen - stored, seen))
            if kind == "ADDED":
                self.job_added.setdefault(name, seen)
                self.jobs_created[name] += 1
            for cond in (job.get("status") or {}).get("conditions") or []:
                if cond["type"] == "Complete" and cond["status"] == "True":
                    self.job_complete.setdefault(name, seen)

    def on_pod(self, kind: str, pod: dict, seen: float) -> None:
        name = pod["metadata"]["name"]
        if kind == "DELETED" or (pod.get("status") or {}).get("phase") != "Running":
            return
        with self.lock:
            if name in self.queued:
                return
            self.queued.add(name)
        self.completing.put(pod)

    def on_run(self, kind: str, run: dict, seen: float) -> None:
        status = run.get("status") or {}
        name = run["metadata"]["name"]
        stored = written_at(run, "status")
        with self.lock:
            if stored is not None and kind == "MODIFIED":
                self.delivery["runs"].append((seen - stored, seen))
            self.run_versions[(name, run["metadata"]["resourceVersion"])] = seen
            for row in status.get("stages") or []:
                if row.get("state") == "Succeeded":
                    self.status_done.setdefault(f"{name}-{row['name']}", seen)
            if status.get("phase") == "Succeeded":
                self.succeeded.setdefault(name, seen)

    def complete(self, stop: threading.Event) -> None:
        """Play the stage: exit 0 with the stage's result as termination message."""
        while not stop.is_set():
            try:
                pod = self.completing.get(timeout=0.5)
            except queue.Empty:
                continue
            stage = pod["metadata"]["labels"]["mathtune.dev/stage"]
            job = pod["metadata"]["labels"]["batch.kubernetes.io/job-name"]
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            statuses = [{"name": c["name"], "image": c["image"], "ready": False, "restartCount": 0,
                         "state": {"terminated": {"exitCode": 0, "reason": "Completed", "message": RESULTS[stage],
                                                  "startedAt": stamp, "finishedAt": stamp}}}
                        for c in pod["spec"]["containers"]]
            body = {"status": {"phase": "Succeeded", "containerStatuses": statuses, "conditions": [
                {"type": "Ready", "status": "False", "reason": "PodCompleted", "lastTransitionTime": stamp}]}}
            try:
                self.core.patch_namespaced_pod_status(pod["metadata"]["name"], NAMESPACE, body)
            except ApiException as exc:
                print(f"bench: cannot complete {pod['metadata']['name']}: {exc.status}", file=sys.stderr)
                continue
            with self.lock:
                self.pod_done.setdefault(job, now())


# -- measuring processes and the API server ---------------------------------------------
def proc_peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


REQUEST_LINE = re.compile(r'^apiserver_request_total\{([^}]*)\} ([0-9.e+]+)$')


def api_metrics(kubeconfig: Path) -> str:
    return local.kubectl("get", "--raw", "/metrics", kubeconfig=kubeconfig).stdout


WATCH_METRICS = ("apiserver_terminated_watchers_total", "apiserver_watch_cache_events_received_total",
                 "apiserver_watch_events_total", "apiserver_watch_events_sizes_sum")
WATCHED = ("mathfinetunes", "jobs", "pods")


def watch_metrics(after: str, before: str) -> List[str]:
    """The API server's own count of the watch events it received from etcd
    and sent, their bytes, and the watchers it closed as too slow, for the
    resources this benchmark watches (the change over the run)."""
    def read(text: str) -> Dict[str, float]:
        out: Dict[str, float] = defaultdict(float)
        for line in text.splitlines():
            m = re.match(r'^(\w+)\{([^}]*)\} ([0-9.e+]+)$', line)
            if not m or m.group(1) not in WATCH_METRICS:
                continue
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
            resource = labels.get("resource", "").split(".")[0]
            if resource in WATCHED:
                out[f"{m.group(1).replace('apiserver_', '')} {resource}"] += float(m.group(3))
        return out
    a, b = read(after), read(before)
    return [f"{k} {a[k] - b.get(k, 0):.0f}" for k in sorted(a) if a[k] - b.get(k, 0)]


def install_crd(kubeconfig: Path, extensions: client.ApiextensionsV1Api) -> None:
    local.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD), kubeconfig=kubeconfig)
    wait_established(extensions)


def controller_manager_watches_runs(kubeconfig: Path, limit: float = 120.0) -> float:
    """Wait until some client watches the runs across the cluster: before
    the operator and this benchmark start, that is the controller manager's
    garbage collector. The seconds waited."""
    start = time.monotonic()
    pattern = re.compile(r'^apiserver_longrunning_requests\{[^}]*resource="mathfinetunes",scope="cluster"[^}]*'
                         r'verb="WATCH"[^}]*\} ([0-9.e+]+)$', re.M)
    while time.monotonic() - start < limit:
        if any(float(m.group(1)) >= 1 for m in pattern.finditer(api_metrics(kubeconfig))):
            break
        time.sleep(1)
    else:
        print(f"bench-scale: no cluster-wide watch of the runs after {limit:.0f} s; going on", flush=True)
    return time.monotonic() - start


def request_seconds(after: str, before: str, verb: str, resource: str, subresource: str = "") -> str:
    """p50 / p99 (bucket bounds) of how long the API server took over one
    kind of request during the run (apiserver_request_duration_seconds)."""
    def buckets(text: str) -> Dict[float, float]:
        out: Dict[float, float] = defaultdict(float)
        for line in text.splitlines():
            if not line.startswith("apiserver_request_duration_seconds_bucket{"):
                continue
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line[:line.rindex("}")]))
            if (labels.get("verb"), labels.get("resource"), labels.get("subresource", "")) == (verb, resource,
                                                                                                 subresource):
                out[float(labels["le"])] += float(line.rsplit(" ", 1)[1])
        return out
    a, b = buckets(after), buckets(before)
    counts = sorted((le, a[le] - b.get(le, 0)) for le in a)
    if not counts or counts[-1][1] == 0:
        return f"{verb} {resource}{'/' + subresource if subresource else ''}: none"
    total = counts[-1][1]
    p50, p99 = (next(le for le, n in counts if n >= q * total) for q in (.5, .99))
    return f"{verb} {resource}{'/' + subresource if subresource else ''} p50 <= {p50:g} s, p99 <= {p99:g} s"


def api_requests(text: str) -> Dict[str, float]:
    """apiserver_request_total summed: all, and by resource."""
    out: Dict[str, float] = defaultdict(float)
    for line in text.splitlines():
        m = REQUEST_LINE.match(line)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        value = float(m.group(2))
        out["all"] += value
        resource = labels.get("resource", "") + ("/" + labels["subresource"] if labels.get("subresource") else "")
        out[resource] += value
        out[f"{labels.get('verb', '')} {resource}"] += value
    return out


def histogram_quantile(text: str, name: str, q: float) -> float:
    """The upper bound of the bucket holding quantile q of a Prometheus histogram."""
    buckets = []
    for line in text.splitlines():
        m = re.match(rf'^{name}_bucket\{{le="([^"]+)"\}} ([0-9.e+]+)$', line)
        if m:
            buckets.append((float(m.group(1)), float(m.group(2))))
    if not buckets or buckets[-1][1] == 0:
        return float("nan")
    total = buckets[-1][1]
    return next(bound for bound, count in buckets if count >= q * total)


# The requests only the operator makes in this benchmark: the harness
# creates each run once and reads runs only by watch; the Job controller,
# the scheduler and kwok post Events too, so the operator's are counted from
# the Events themselves (operator_event_writes).
OPERATOR_REQUESTS = ("GET mathfinetunes", "PATCH mathfinetunes", "PATCH mathfinetunes/status", "GET leases",
                     "PUT leases", "POST leases", "CONNECT pods/log", "GET pods/log", "POST jobs", "PATCH jobs",
                     "DELETE jobs", "POST configmaps")


def operator_events(core: client.CoreV1Api) -> Tuple[int, List[float]]:
    """The operator's Event writes (a create per Event, a patch per repeat),
    and how late each Event was stored after the pass that made it
    (creationTimestamp - firstTimestamp, both to the second)."""
    body = json.loads(core.list_namespaced_event(NAMESPACE, field_selector="source=mathtune-operator",
                                                 _preload_content=False, _request_timeout=60).data)
    items = body.get("items") or []
    late = [parse_stamp(item["metadata"]["creationTimestamp"]) - parse_stamp(item["firstTimestamp"]) for item in items
            if item.get("firstTimestamp")]
    return sum(int(item.get("count") or 1) for item in items), late


def main() -> int:
    kubeconfig = local.KUBECONFIG if local.healthy() else local.up()
    k8s_config.load_kube_config(str(kubeconfig))
    api = client.ApiClient()
    api.rest_client.pool_manager.connection_pool_kw["maxsize"] = 32
    core, batch, custom = client.CoreV1Api(api), client.BatchV1Api(api), client.CustomObjectsApi(api)
    install_crd(kubeconfig, client.ApiextensionsV1Api(api))
    local.kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true", "--timeout=300s",
                  kubeconfig=kubeconfig)
    core.create_namespace({"metadata": {"name": NAMESPACE}})
    local.kubectl("apply", "-f", "-", kubeconfig=kubeconfig, input=yaml.safe_dump_all(bench_nodes()))
    pv = f"{NAMESPACE}-work"
    local.kubectl("delete", "pv", pv, "--ignore-not-found", kubeconfig=kubeconfig)
    core.create_persistent_volume({"metadata": {"name": pv}, "spec": {
        "capacity": {"storage": "1Ti"}, "accessModes": ["ReadWriteMany"], "storageClassName": "bench-static",
        "persistentVolumeReclaimPolicy": "Delete", "hostPath": {"path": "/tmp/mathtune-bench"},
        "claimRef": {"namespace": NAMESPACE, "name": "bench-work"}}})
    core.create_namespaced_persistent_volume_claim(NAMESPACE, {"metadata": {"name": "bench-work"}, "spec": {
        "accessModes": ["ReadWriteMany"], "storageClassName": "bench-static",
        "resources": {"requests": {"storage": "1Ti"}}}})
    for _ in range(120):  # pods are refused until the namespace's default ServiceAccount exists
        try:
            core.read_namespaced_service_account("default", NAMESPACE, _request_timeout=10)
            break
        except ApiException:
            time.sleep(0.5)
    # Measure a cluster in its steady state, as runs meet it where the CRD
    # was installed long before: the controller manager (its garbage
    # collector) watches the runs, which it starts within its 30 s
    # discovery period of a new CRD; and the API server is quiet, which a
    # fresh cluster and the simulated nodes just added keep it from being
    # for a while.
    waited = controller_manager_watches_runs(kubeconfig)
    print(f"bench-scale: the controller manager watched the runs after {waited:.0f} s", flush=True)
    waited = settle_apiserver()
    print(f"bench-scale: the API server settled (under a quarter core) after {waited:.0f} s", flush=True)

    rec = Recorder(core)
    stop = threading.Event()
    selector = "app.kubernetes.io/managed-by=mathtune-operator"
    watchers = [
        lambda: watch_raw("jobs", lambda **kw: batch.list_namespaced_job(NAMESPACE, label_selector=selector, **kw),
                          rec.on_job, stop),
        lambda: watch_raw("pods", lambda **kw: core.list_namespaced_pod(NAMESPACE, label_selector=selector, **kw),
                          rec.on_pod, stop),
        lambda: watch_raw("runs", lambda **kw: custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, **kw),
                          rec.on_run, stop),
    ]
    threads = [threading.Thread(target=w, daemon=True) for w in watchers]
    threads += [threading.Thread(target=rec.complete, args=(stop,), daemon=True) for _ in range(8)]
    for t in threads:
        t.start()

    port = free_port()
    log = Path(tempfile.mkdtemp(prefix="bench-scale-")) / "operator.log"
    env = dict(os.environ, KUBECONFIG=str(kubeconfig), POD_NAMESPACE=NAMESPACE, POD_NAME="bench-operator",
               PYTHONUNBUFFERED="1")
    operator = subprocess.Popen([str(Path(sys.executable).parent / "mathtune-operator"), "--namespace", NAMESPACE,
                                 "--metrics-port", str(port)], env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    for _ in range(120):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read()
            break
        except OSError:
            if operator.poll() is not None:
                raise SystemExit(f"operator exited:\n{log.read_text()[-3000:]}") from None
            time.sleep(0.5)
    second_watch_log = log.with_name("kubectl-watch.log")
    second_watch = kubectl_watch(kubeconfig, second_watch_log)
    etcd_watch_log = log.with_name("etcd-watch.log")
    etcds_watch = etcd_watch(etcd_watch_log)
    cpu_before = proc_cpu_seconds(operator.pid)
    by_process_before = cpu_seconds_by_process()
    machine_load: List[Tuple[float, float, float]] = []
    threading.Thread(target=sample_machine, args=(stop, machine_load), daemon=True).start()
    requests_text_before = api_metrics(kubeconfig)
    requests_before = api_requests(requests_text_before)

    print(f"bench-scale: {RUNS} concurrent runs of seed000 on {ASCEND_NODES} simulated Ascend nodes "
          f"+ {CPU_NODES} CPU nodes; operator log {log}", flush=True)
    started = now()
    created: Dict[str, float] = {}  # run -> when the API server had it (the create call returned)

    def create(part: range) -> None:
        for i in part:
            custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, run_doc(i))
            created[f"r{i:04d}"] = now()
    pool = [threading.Thread(target=create, args=(range(k, RUNS, 8),)) for k in range(8)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    snapshot = ""
    deadline = started + max(600, RUNS * 3)
    while len(rec.succeeded) < RUNS and now() < deadline:
        time.sleep(1)
        if not snapshot and len(rec.status_done) > RUNS * 2:
            snapshot = local.kubectl("get", "mft", "-n", NAMESPACE, kubeconfig=kubeconfig).stdout
        if operator.poll() is not None:
            raise SystemExit(f"operator exited {operator.returncode}:\n{log.read_text()[-3000:]}")
    elapsed = now() - started
    requests_text_after = api_metrics(kubeconfig)
    requests_after = api_requests(requests_text_after)
    operator_metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    cpu = proc_cpu_seconds(operator.pid) - cpu_before
    by_process_after = cpu_seconds_by_process()
    rss = proc_peak_rss_mib(operator.pid)
    operator.terminate()
    operator.wait(30)
    os.killpg(second_watch[0].pid, signal.SIGTERM)  # the loop and its kubectl
    for proc in second_watch:
        proc.wait(10)
    etcds_watch[0].terminate()
    for proc in etcds_watch:
        proc.wait(10)
    stop.set()

    total, jobctl, added, status, status_added, first = [], [], [], [], [], []
    slowest, slowest_status = [], []
    for i in range(RUNS):
        run = f"r{i:04d}"
        if run in created and f"{run}-prepare" in rec.job_added:
            first.append(rec.job_added[f"{run}-prepare"] - created[run])
        for here, nxt in zip(STAGES, STAGES[1:]):
            job, next_job = f"{run}-{here}", f"{run}-{nxt}"
            done, complete, nxt_added = rec.pod_done.get(job), rec.job_complete.get(job), rec.job_added.get(next_job)
            if None in (done, complete, nxt_added):
                continue
            total.append(nxt_added - done)
            jobctl.append(complete - done)
            added.append(nxt_added - complete)
            slowest.append((nxt_added - complete, f"{job} -> {nxt}", complete - started))
        for here in STAGES:
            job = f"{run}-{here}"
            if job in rec.pod_done and job in rec.status_done:
                status.append(rec.status_done[job] - rec.pod_done[job])
            if job in rec.job_complete and job in rec.status_done:
                status_added.append(rec.status_done[job] - rec.job_complete[job])
                slowest_status.append((rec.status_done[job] - rec.job_complete[job], job,
                                       rec.job_complete[job] - started))
    duplicates = sum(1 for n in rec.jobs_created.values() if n > 1)
    run_minutes = RUNS * elapsed / 60
    per_run = {k: (requests_after.get(k, 0) - requests_before.get(k, 0)) / RUNS for k in OPERATOR_REQUESTS}
    event_writes, events_late = operator_events(core)
    per_run["POST/PATCH events (its own)"] = event_writes / RUNS
    mine = sum(per_run.values()) * RUNS
    everyone = requests_after["all"] - requests_before["all"]

    print()
    print(f"runs Succeeded: {len(rec.succeeded)}/{RUNS} in {elapsed:.0f}s; stage Jobs created twice: {duplicates}")
    print(f"{'latency (s)':<44}{'p50':>8}{'p99':>8}{'max':>8}  samples")
    for label, values in [("pod completed -> next stage's Job (total)", total),
                          ("pod completed -> Job Complete (Job ctl)", jobctl),
                          ("Job Complete -> next stage's Job (added)", added),
                          ("pod completed -> run status records it", status),
                          ("Job Complete -> run status records it", status_added),
                          ("run created -> its first stage's Job", first)]:
        print(f"{label:<44}{pct(values, .5):>8.3f}{pct(values, .99):>8.3f}{max(values or [float('nan')]):>8.3f}"
              f"  {len(values)}")
    if jobctl and added:
        print(f"operator's added latency against the Job controller's own (p99): "
              f"{pct(added, .99) / pct(jobctl, .99):.2f}x; p50 {statistics.median(added) / statistics.median(jobctl):.2f}x")
    print("operator's own histograms (bucket bounds): reconcile pass p50 <= {:.3f} s, p99 <= {:.3f} s; "
          "wait for a worker p50 <= {:.3f} s, p99 <= {:.3f} s".format(
              *(histogram_quantile(operator_metrics, name, q) for name in (
                  "mathtune_reconcile_duration_seconds", "mathtune_workqueue_wait_seconds") for q in (.5, .99))))
    print("added by 20 s window from the start (p99 / max, samples): " + "; ".join(
        f"{w}-{w + 20} s {pct(v, .99):.2f}/{max(v):.2f} ({len(v)})"
        for w, v in in_windows([(at, secs) for secs, _, at in slowest]).items()))
    print("slowest added: " + "; ".join(f"{name} {secs:.2f} s at t={at:.0f} s"
                                        for secs, name, at in sorted(slowest, reverse=True)[:5]))
    errors = {m.group(1): float(m.group(2)) for m in re.finditer(
        r'^mathtune_reconcile_errors_total\{reason="([^"]+)"\} ([0-9.e+]+)$', operator_metrics, re.M)}
    print("operator's failed or repeated passes by reason: " +
          (", ".join(f"{k} {v:.0f}" for k, v in sorted(errors.items())) or "none"))
    print("status by 20 s window from the start (p99 / max, samples): " + "; ".join(
        f"{w}-{w + 20} s {pct(v, .99):.2f}/{max(v):.2f} ({len(v)})"
        for w, v in in_windows([(at, secs) for secs, _, at in slowest_status]).items()))
    after_burst = [secs for secs, _, at in slowest_status if at >= 20]
    print(f"status from t = 20 s on (after the runs' creation burst): p50 {pct(after_burst, .5):.3f} s, "
          f"p99 {pct(after_burst, .99):.3f} s, max {max(after_burst or [float('nan')]):.3f} s ({len(after_burst)})")
    print("slowest status: " + "; ".join(f"{name} {secs:.2f} s at t={at:.0f} s"
                                         for secs, name, at in sorted(slowest_status, reverse=True)[:5]))
    # Where a lag is: before the API server stored the write (the writer),
    # or between storing it and a watch event (the API server's watch path,
    # or this process reading it). managedFields' time is to the second.
    for watch in ("jobs", "runs"):
        lags = [lag for lag, _ in rec.delivery[watch]]
        by_window = in_windows([(seen - started, lag) for lag, seen in rec.delivery[watch]])
        print(f"{watch}: stored (managedFields time, to the second) -> the benchmark's watch saw it: "
              f"p50 {pct(lags, .5):.2f} s, p99 {pct(lags, .99):.2f} s, max {max(lags or [float('nan')]):.2f} s "
              f"({len(lags)}); max by 20 s window: " + ", ".join(
                  f"{w}: {max(v):.1f}" for w, v in by_window.items()))
    for watcher, theirs in (("kubectl's watch (another process)", kubectl_seen(second_watch_log)),
                            ("etcd's own watch (before the API server)", etcd_seen(etcd_watch_log))):
        behind = [(mine_at - started, mine_at - theirs[key]) for key, mine_at in rec.run_versions.items()
                  if key in theirs]
        print(f"runs: {watcher} saw an event -> this process's watch saw it: "
              f"p50 {pct([b for _, b in behind], .5):.2f} s, p99 {pct([b for _, b in behind], .99):.2f} s "
              f"({len(behind)} events of {len(rec.run_versions)}); max by 20 s window: " +
              ", ".join(f"{w}: {max(v):.1f}" for w, v in in_windows(behind).items()))
    print("the API server's time per request (its own histogram, bucket bounds): " + "; ".join(
        request_seconds(requests_text_after, requests_text_before, *kind) for kind in (
            ("PATCH", "mathfinetunes", "status"), ("POST", "mathfinetunes"), ("POST", "jobs"),
            ("PATCH", "pods", "status"))))
    print("API server watch metrics: " + "; ".join(watch_metrics(requests_text_after, requests_text_before)))
    print("the benchmark's watches listed again (fell behind, 410 Gone): " +
          ", ".join(f"{k} {RELISTS[k]}" for k in ("jobs", "pods", "runs")) +
          " (a relist dates what it finds to the relist)")
    print(f"API requests per run-minute: {everyone / run_minutes:.1f} all clients; "
          f"{mine / run_minutes:.1f} the operator's (writes, reads and pod logs; its watches not counted)")
    print("operator's requests per run: " + ", ".join(
        f"{k} {v:.1f}" for k, v in sorted(per_run.items(), key=lambda kv: -kv[1]) if v >= 0.05))
    print(f"operator's Events: {event_writes} written ({EVENTS_PER_RUN * RUNS} made: {EVENTS_PER_RUN} a run); "
          f"stored after the pass that made them (to the second) p50 {pct(events_late, .5):.0f} s, "
          f"p99 {pct(events_late, .99):.0f} s, max {max(events_late or [float('nan')]):.0f} s")
    print(f"operator: peak RSS {rss:.0f} MiB, CPU {cpu:.1f} s ({cpu / max(1, RUNS):.3f} s per run)")
    # Every latency above is measured on one machine that runs the control
    # plane, plays every stage pod and times it all: how busy it was says
    # how much of a lag is waiting for a core.
    cores = os.cpu_count() or 1
    load_windows = in_windows([(at - started, (busy, pending)) for at, busy, pending in machine_load])
    print(f"the machine ({cores} cores, shared by the control plane, the operator and this benchmark): busy "
          f"{statistics.mean(b for _, b, _ in machine_load):.2f} cores on average; by 20 s window (mean, seconds "
          "at >= 95 %): " + "; ".join(
              f"{w}-{w + 20} s {statistics.mean(b for b, _ in v):.2f} ({sum(b >= .95 * cores for b, _ in v)} "
              f"of {len(v)})" for w, v in load_windows.items()))
    print("events etcd held for watchers reading slower than it wrote (max by 20 s window): " + ", ".join(
        f"{w}: {max(p for _, p in v):.0f}" for w, v in load_windows.items()))
    used = cpu_seconds_between(by_process_before, by_process_after)
    print(f"CPU during the runs by command (cores on average over {elapsed:.0f} s): " + ", ".join(
        f"{name} {secs / elapsed:.2f}" for name, secs in sorted(used.items(), key=lambda kv: -kv[1])[:9]
        if secs > 0))
    print("goal: p99 added < 1 s at 500 runs, peak RSS < 300 MiB -> "
          f"{'met' if pct(added, .99) < 1 and rss < 300 and RUNS >= 500 else 'not met'}")
    print("Argo Workflows side by side: not run. The Go module proxy refuses github.com/argoproj/argo-workflows/v3 "
          "(403, every version); it serves v4.0.5 only, for which security flaws are reported, so its "
          "workflow-controller is not built here.")
    if snapshot:
        lines = snapshot.splitlines()
        print(f"\nkubectl get mft -n {NAMESPACE} during the run (first 8 of {len(lines) - 1}):")
        print("\n".join(lines[:9]))
    print(f"\ncommand: BENCH_RUNS={RUNS} {sys.executable} tests/bench/bench_scale.py")

    if os.environ.get("BENCH_KEEP"):  # to look at the runs afterwards
        return 0 if len(rec.succeeded) == RUNS and duplicates == 0 else 1
    # Gone before it returns: deleting thousands of objects is work that
    # would disturb whatever is measured next (make bench-scale's next step).
    print("bench-scale: deleting the benchmark's namespace", flush=True)
    local.kubectl("delete", "namespace", NAMESPACE, "--wait=true", "--timeout=600s", kubeconfig=kubeconfig,
                  check=False, timeout=660)
    local.kubectl("delete", "nodes", "-l", "mathtune.dev/bench=scale", "--wait=false", kubeconfig=kubeconfig,
                  check=False)
    local.kubectl("delete", "pv", pv, "--wait=false", kubeconfig=kubeconfig, check=False)
    return 0 if len(rec.succeeded) == RUNS and duplicates == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
