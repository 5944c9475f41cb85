"""The local pod runner: really runs the commands of simulated pods.

kwok fakes the nodes of the local cluster: it schedules and "starts" pods but
runs nothing. Pods labelled `mathtune.dev/stage` are made Running by kwok and
then left alone (hack/cluster/kwok.yaml). This runner does what a kubelet
would do for them, on this machine:

1. it notices each such pod once kwok reports it Running;
2. it runs every container's command + args (after Kubernetes' `$(VAR)`
   expansion) with the container's environment (`env`, `envFrom`, field and
   ConfigMap/Secret references), in a private mount namespace where each
   volume is a directory under the runner's root (`--root`):
     persistentVolumeClaim  the bound PersistentVolume's hostPath; the runner
                            provisions claims itself (StorageClass mathtune-local,
                            the default, or no class) as <root>/pvc/<namespace>/<claim>-<uid>/,
                            shared by the claim's pods so stages see each other's output
     configMap / secret     <root>/pods/<namespace>/<pod>/volumes/<volume>/ (files written from the data)
     emptyDir, hostPath and
     anything else          <root>/pods/<namespace>/<pod>/volumes/<volume>/ (empty)
   and /dev/termination-log (the container's terminationMessagePath) is a
   file in the pod's directory (hack/cluster/podns.sh sets this up);
3. it writes the container's stdout/stderr, in the CRI log format, to
   <root>/pods/<namespace>/<pod>/<container>.log and creates a kwok `Logs`
   object pointing at it, so `kubectl logs` and the operator's
   read_namespaced_pod_log see the real output while it runs;
4. when the command ends it writes the terminal pod status a kubelet would:
   exit code, reason, termination message (the file, or the log tail with
   FallbackToLogsOnError), start and finish times, phase Succeeded/Failed.
   A pod deleted while running has its process group stopped.

The image is ignored: every container runs with this machine's tools, the
repository's virtualenv first on PATH (so `mathtune-pipeline` and `msrun`
resolve to it). Resource requests/limits are not enforced.

    python -m hack.cluster.podrunner --root out/pods [--kubeconfig K] [--selector mathtune.dev/stage]
"""
import argparse
import base64
import datetime as _dt
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
PODNS = HERE / "podns.sh"
DEFAULT_SELECTOR = "mathtune.dev/stage"
# A kubelet keeps at most this much of a termination message (per container).
MAX_MESSAGE_BYTES = 4096
# FallbackToLogsOnError: the last 80 lines, at most 2 KiB (kubelet's limits).
FALLBACK_LINES, FALLBACK_BYTES = 80, 2048
KWOK_LOGS = ("kwok.x-k8s.io", "v1alpha1", "logs")
# The runner is also the cluster's volume provisioner: a StorageClass naming
# this provisioner (STORAGE_CLASS below, the local cluster's default) gets
# each claim a hostPath PersistentVolume under the runner's root.
PROVISIONER = "mathtune.dev/local-pod-runner"
STORAGE_CLASS = {
    "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
    "metadata": {"name": "mathtune-local",
                 "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
    "provisioner": PROVISIONER, "reclaimPolicy": "Delete", "volumeBindingMode": "Immediate",
}

log = logging.getLogger("podrunner")


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------
# Pure helpers: environment and paths (unit-tested without a cluster)
# --------------------------------------------------------------------------

_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(text: str, env: Dict[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion: defined variables are replaced, `$$`
    escapes a `$`, undefined references are left as written."""
    def sub(m: "re.Match") -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return env[name] if name in env else m.group(0)
    return _REF.sub(sub, text)


def field_value(pod: dict, path: str) -> str:
    """The downward API's fieldRef paths a kubelet resolves."""
    meta, spec, status = pod["metadata"], pod["spec"], pod.get("status") or {}
    m = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
    if m:
        return (meta.get(m.group(1)) or {}).get(m.group(2), "")
    simple = {
        "metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"), "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.podIP": status.get("podIP"), "status.hostIP": status.get("hostIP"),
    }
    if path not in simple:
        raise ValueError(f"fieldRef {path} is not supported by the local pod runner")
    return simple[path] or ""


def container_env(pod: dict, container: dict, lookup) -> Dict[str, str]:
    """The variables Kubernetes gives the container, in its order: envFrom
    first, then env (later definitions win; values may use earlier ones).
    `lookup(kind, name, key)` reads a ConfigMap/Secret key (None: absent)."""
    env: Dict[str, str] = {}
    for src in container.get("envFrom") or []:
        prefix = src.get("prefix", "")
        for kind in ("configMapRef", "secretRef"):
            ref = src.get(kind)
            if ref:
                data = lookup(kind, ref["name"], None) or {}
                if not data and not ref.get("optional"):
                    raise LookupError(f"{kind} {ref['name']} not found")
                env.update({prefix + k: v for k, v in data.items()})
    for var in container.get("env") or []:
        name = var["name"]
        if "value" in var:
            env[name] = expand(var.get("value") or "", env)
        elif "valueFrom" in var:
            vf = var["valueFrom"]
            if "fieldRef" in vf:
                env[name] = field_value(pod, vf["fieldRef"]["fieldPath"])
            elif "configMapKeyRef" in vf or "secretKeyRef" in vf:
                kind = "configMapKeyRef" if "configMapKeyRef" in vf else "secretKeyRef"
                ref = vf[kind]
                value = lookup(kind, ref["name"], ref["key"])
                if value is None:
                    if ref.get("optional"):
                        continue
                    raise LookupError(f"{kind} {ref['name']}/{ref['key']} not found")
                env[name] = value
            elif "resourceFieldRef" in vf:
                # Limits are not enforced here; report the request/limit as written.
                res = vf["resourceFieldRef"]["resource"]
                kind, _, rname = res.partition(".")
                env[name] = str(((container.get("resources") or {}).get(kind) or {}).get(rname, "0"))
        else:
            env[name] = ""
    return env


def command_line(container: dict, env: Dict[str, str]) -> List[str]:
    argv = list(container.get("command") or []) + list(container.get("args") or [])
    if not argv:
        raise ValueError(f"container {container['name']} has no command: the local runner cannot use an image's entrypoint")
    return [expand(a, env) for a in argv]


def cri_line(stream: str, text: str) -> str:
    """One line of the CRI container log format kwok (and kubelet) read."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"{stamp} {stream} F {text}\n"


def tail_message(log_path: Path) -> str:
    """FallbackToLogsOnError: the log's last lines as the message."""
    if not log_path.exists():
        return ""
    lines = []
    for line in log_path.read_text(errors="replace").splitlines()[-FALLBACK_LINES:]:
        parts = line.split(" ", 3)
        lines.append(parts[3] if len(parts) == 4 else line)
    text = "\n".join(lines)
    return text.encode()[-FALLBACK_BYTES:].decode(errors="ignore")


# --------------------------------------------------------------------------
# One pod
# --------------------------------------------------------------------------

class PodRun:
    """Runs one pod's containers and reports their end to the API server."""

    def __init__(self, runner: "PodRunner", pod: dict):
        self.runner = runner
        self.pod = pod
        meta = pod["metadata"]
        self.ns, self.name, self.uid = meta["namespace"], meta["name"], meta["uid"]
        self.dir = runner.root / "pods" / self.ns / self.name
        self.procs: List[subprocess.Popen] = []
        self.cancelled = threading.Event()

    # -- volumes ------------------------------------------------------------
    def _volume_dir(self, vol: dict) -> Path:
        if "persistentVolumeClaim" in vol:
            path = self.runner.claim_path(self.ns, vol["persistentVolumeClaim"]["claimName"])
            path.mkdir(parents=True, exist_ok=True)
            return path
        path = self.dir / "volumes" / vol["name"]
        path.mkdir(parents=True, exist_ok=True)
        for kind in ("configMap", "secret"):
            if kind in vol:
                self._write_items(path, kind, vol[kind])
        return path

    def _write_items(self, path: Path, kind: str, src: dict) -> None:
        name = src.get("name") or src.get("secretName")
        data = self.runner.read_data("configMapRef" if kind == "configMap" else "secretRef", self.ns, name)
        if data is None:
            if src.get("optional"):
                return
            raise LookupError(f"{kind} {name} not found")
        items = src.get("items") or [{"key": k, "path": k} for k in data]
        for item in items:
            if item["key"] not in data:
                raise LookupError(f"{kind} {name} has no key {item['key']}")
            target = path / item["path"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(data[item["key"]])

    def mount_table(self, container: dict, term_file: Path) -> List[Tuple[str, str, str]]:
        vols = {v["name"]: v for v in self.pod["spec"].get("volumes") or []}
        table = []
        for m in container.get("volumeMounts") or []:
            vol = vols.get(m["name"])
            if vol is None:
                raise LookupError(f"volumeMount {m['name']} names no volume")
            src = self._volume_dir(vol)
            if m.get("subPath"):
                src = src / m["subPath"]
                if not src.exists():
                    src.mkdir(parents=True)
            table.append((str(src), m["mountPath"], "ro" if m.get("readOnly") else "rw"))
        table.append((str(term_file), container.get("terminationMessagePath") or "/dev/termination-log", "rw"))
        return table

    # -- running --------------------------------------------------------------
    def run(self) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            results = {}
            for c in self.pod["spec"].get("initContainers") or []:
                results[c["name"]] = self._run_container(c, init=True)
                if results[c["name"]]["exitCode"] != 0:
                    break
            else:
                threads, main = [], {}
                for c in self.pod["spec"]["containers"]:
                    t = threading.Thread(target=lambda c=c: main.__setitem__(c["name"], self._run_container(c)),
                                         name=f"{self.name}/{c['name']}", daemon=True)
                    t.start()
                    threads.append(t)
                for t in threads:
                    t.join()
                results.update(main)
            if self.cancelled.is_set():
                log.info("%s/%s deleted while running: not reported", self.ns, self.name)
                return
            self.runner.report(self.pod, results)
        except Exception as exc:  # the pod fails; the runner goes on
            log.exception("%s/%s could not run", self.ns, self.name)
            if not self.cancelled.is_set():
                c = self.pod["spec"]["containers"][0]
                self.runner.report(self.pod, {c["name"]: {
                    "exitCode": 128, "reason": "StartError", "message": f"local pod runner: {exc}"[:MAX_MESSAGE_BYTES],
                    "startedAt": now(), "finishedAt": now()}})
        finally:
            self.runner.finished(self)

    def _run_container(self, container: dict, init: bool = False) -> dict:
        name = container["name"]
        env = dict(self.runner.base_env)
        env["HOSTNAME"] = self.name
        env.update(container_env(self.pod, container, lambda kind, n, key: self.runner.lookup(kind, self.ns, n, key)))
        argv = command_line(container, env)
        term_file = self.dir / f"{name}.termination-log"
        term_file.write_text("")
        log_path = self.dir / f"{name}.log"
        log_path.write_text("")
        if not init:
            self.runner.serve_logs(self.pod, name, log_path)
        table = self.mount_table(container, term_file)
        table_path = self.dir / f"{name}.mounts"
        table_path.write_text("".join(f"{s}\t{d}\t{m}\n" for s, d, m in table))
        self.runner.claim_mountpoints([d for _, d, _ in table])
        workdir = container.get("workingDir") or "/"
        wrapper = self.runner.unshare + ["bash", str(PODNS), str(table_path), str(self.dir / f".dev-{name}"), workdir, "--"]
        started = now()
        log.info("%s/%s[%s]: %s", self.ns, self.name, name, " ".join(argv))
        try:
            proc = subprocess.Popen(wrapper + argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
            self.procs.append(proc)
            lock = threading.Lock()
            with open(log_path, "a", buffering=1) as sink:
                pumps = [threading.Thread(target=self._pump, args=(proc.stdout, "stdout", sink, lock), daemon=True),
                         threading.Thread(target=self._pump, args=(proc.stderr, "stderr", sink, lock), daemon=True)]
                for p in pumps:
                    p.start()
                code = proc.wait()
                for p in pumps:
                    p.join()
        finally:
            self.runner.release_mountpoints([d for _, d, _ in table])
        message = term_file.read_bytes()[:MAX_MESSAGE_BYTES].decode(errors="replace")
        if not message and code != 0 and container.get("terminationMessagePolicy") == "FallbackToLogsOnError":
            message = tail_message(log_path)
        if code < 0:  # killed by a signal: report as the shell would (128 + n)
            code = 128 - code
        log.info("%s/%s[%s]: exit %d", self.ns, self.name, name, code)
        return {"exitCode": code, "reason": "Completed" if code == 0 else "Error", "message": message,
                "startedAt": started, "finishedAt": now()}

    @staticmethod
    def _pump(stream, name: str, sink, lock: threading.Lock) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace").rstrip("\n")
            with lock:
                sink.write(cri_line(name, line))

    def cancel(self) -> None:
        """The pod was deleted: stop its processes as a kubelet would (TERM, then KILL)."""
        self.cancelled.set()
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        deadline = time.monotonic() + 10
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


# --------------------------------------------------------------------------
# The runner
# --------------------------------------------------------------------------

class PodRunner:
    def __init__(self, api: client.ApiClient, root: Path, selector: str = DEFAULT_SELECTOR,
                 namespace: Optional[str] = None, bin_dir: Optional[Path] = None, poll_seconds: float = 1.0):
        self.api = api
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.root = Path(root).resolve()
        self.selector = selector
        self.namespace = namespace
        self.poll_seconds = poll_seconds
        self.runs: Dict[str, PodRun] = {}
        self.done: set = set()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread: Optional[threading.Thread] = None
        self.mountpoints: Dict[str, int] = {}
        self.made_on_host: List[Path] = []
        bin_dir = Path(bin_dir or REPO / ".venv" / "bin")
        path = os.pathsep.join([str(bin_dir), "/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"])
        self.base_env = {"PATH": path, "HOME": str(self.root / "home"), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
        (self.root / "home").mkdir(parents=True, exist_ok=True)
        # Root may make mount namespaces directly; anyone else through a user
        # namespace in which they are root.
        self.unshare = ["unshare", "--mount", "--propagation", "private"]
        if os.geteuid() != 0:
            self.unshare = ["unshare", "--user", "--map-root-user", "--mount", "--propagation", "private"]
        if not shutil.which("unshare"):
            raise RuntimeError("unshare (util-linux) is needed to give pods their volumes")

    # -- API helpers ------------------------------------------------------------
    def read_data(self, kind: str, ns: str, name: str) -> Optional[Dict[str, str]]:
        try:
            if kind.startswith("configMap"):
                cm = self.core.read_namespaced_config_map(name, ns)
                data = dict(cm.data or {})
                data.update({k: base64.b64decode(v).decode(errors="replace") for k, v in (cm.binary_data or {}).items()})
                return data
            secret = self.core.read_namespaced_secret(name, ns)
            return {k: base64.b64decode(v).decode(errors="replace") for k, v in (secret.data or {}).items()}
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def lookup(self, kind: str, ns: str, name: str, key: Optional[str]):
        data = self.read_data(kind, ns, name)
        if key is None:
            return data
        return None if data is None else data.get(key)

    def serve_logs(self, pod: dict, container: str, log_path: Path) -> None:
        """A kwok `Logs` object: the fake kubelet serves this file as the container's log."""
        group, version, plural = KWOK_LOGS
        meta = pod["metadata"]
        body = {"apiVersion": f"{group}/{version}", "kind": "Logs",
                "metadata": {"name": meta["name"], "namespace": meta["namespace"],
                             "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": meta["name"],
                                                  "uid": meta["uid"]}]},
                "spec": {"logs": [{"containers": [container], "logsFile": str(log_path), "follow": True}]}}
        try:
            self.custom.create_namespaced_custom_object(group, version, meta["namespace"], plural, body)
        except ApiException as exc:
            if exc.status == 409:
                current = self.custom.get_namespaced_custom_object(group, version, meta["namespace"], plural, meta["name"])
                logs = [l for l in current["spec"].get("logs", []) if container not in (l.get("containers") or [])]
                current["spec"]["logs"] = logs + body["spec"]["logs"]
                self.custom.replace_namespaced_custom_object(group, version, meta["namespace"], plural, meta["name"], current)
            elif exc.status == 404:
                raise RuntimeError("the cluster has no kwok Logs resource: start it with hack/cluster/up.sh "
                                   "(kwok.yaml enables the Logs CRD)") from exc
            else:
                raise

    def report(self, pod: dict, results: Dict[str, dict]) -> None:
        """The terminal status a kubelet writes (cf. podsim.complete_pod)."""
        spec = pod["spec"]
        ok = all(r["exitCode"] == 0 for r in results.values()) and \
            all(c["name"] in results for c in spec["containers"])
        def status_of(c):
            r = results.get(c["name"])
            if r is None:
                return {"name": c["name"], "image": c.get("image", ""), "ready": False, "restartCount": 0,
                        "state": {"waiting": {"reason": "PodInitializing"}}}
            term = {"exitCode": r["exitCode"], "reason": r["reason"], "startedAt": r["startedAt"],
                    "finishedAt": r["finishedAt"]}
            if r["message"]:
                term["message"] = r["message"]
            return {"name": c["name"], "image": c.get("image", ""), "ready": False, "started": False,
                    "restartCount": 0, "state": {"terminated": term}}
        body = {"status": {
            "phase": "Succeeded" if ok else "Failed",
            "containerStatuses": [status_of(c) for c in spec["containers"]],
            "conditions": [
                {"type": "Ready", "status": "False", "reason": "PodCompleted", "lastTransitionTime": now()},
                {"type": "ContainersReady", "status": "False", "reason": "PodCompleted", "lastTransitionTime": now()},
            ],
        }}
        if spec.get("initContainers"):
            body["status"]["initContainerStatuses"] = [status_of(c) for c in spec["initContainers"]]
        meta = pod["metadata"]
        try:
            self.core.patch_namespaced_pod_status(meta["name"], meta["namespace"], body)
        except ApiException as exc:
            if exc.status != 404:  # deleted meanwhile: nothing to report to
                raise

    # -- volumes: claims and their PersistentVolumes ----------------------------------
    def claim_path(self, ns: str, claim: str) -> Path:
        """Where a claim's data lives: the hostPath of the volume bound to it."""
        pvc = self.core.read_namespaced_persistent_volume_claim(claim, ns)
        if not pvc.spec.volume_name:
            raise LookupError(f"claim {ns}/{claim} is not bound")
        pv = self.core.read_persistent_volume(pvc.spec.volume_name)
        if not pv.spec.host_path:
            raise LookupError(f"volume {pv.metadata.name} of claim {ns}/{claim} is not a hostPath volume")
        return Path(pv.spec.host_path.path)

    def _ours_to_provision(self, pvc) -> bool:
        if pvc.spec.volume_name or pvc.status.phase != "Pending":
            return False
        annotations = pvc.metadata.annotations or {}
        if annotations.get("volume.kubernetes.io/storage-provisioner") == PROVISIONER:
            return True
        # A claim with no class at all only binds to a volume made for it.
        return pvc.spec.storage_class_name == "" and not pvc.spec.selector

    def reclaim_once(self) -> None:
        """Volumes it made whose claim is gone are deleted with their data
        (reclaim policy Delete, done by the provisioner as in real clusters)."""
        pvs = self.core.list_persistent_volume(label_selector="mathtune.dev/local-pod-runner=true").items
        for pv in pvs:
            path = Path(pv.spec.host_path.path)
            # Only this runner's volumes: others (another runner's root) are theirs.
            if pv.status.phase != "Released" or not path.is_relative_to(self.root):
                continue
            try:
                self.core.delete_persistent_volume(pv.metadata.name)
            except ApiException as exc:
                if exc.status != 404:
                    raise
            if path.exists():
                shutil.rmtree(path)
                log.info("deleted %s (claim %s/%s is gone)", path, pv.spec.claim_ref.namespace, pv.spec.claim_ref.name)

    def provision_once(self) -> None:
        if self.namespace:
            claims = self.core.list_namespaced_persistent_volume_claim(self.namespace).items
        else:
            claims = self.core.list_persistent_volume_claim_for_all_namespaces().items
        for pvc in claims:
            if not self._ours_to_provision(pvc):
                continue
            ns, name = pvc.metadata.namespace, pvc.metadata.name
            # One directory per claim object: a claim deleted and made again
            # under the same name starts empty, never sees the old data.
            path = self.root / "pvc" / ns / f"{name}-{pvc.metadata.uid[:8]}"
            path.mkdir(parents=True, exist_ok=True)
            storage = ((pvc.spec.resources.requests or {}) if pvc.spec.resources else {}).get("storage", "1Gi")
            body = {"apiVersion": "v1", "kind": "PersistentVolume",
                    "metadata": {"name": f"pvc-{pvc.metadata.uid}",
                                 "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER},
                                 "labels": {"mathtune.dev/local-pod-runner": "true"}},
                    "spec": {"capacity": {"storage": storage},
                             "accessModes": pvc.spec.access_modes or ["ReadWriteOnce"],
                             # Retain keeps Kubernetes' hands off; reclaim_once deletes.
                             "persistentVolumeReclaimPolicy": "Retain",
                             "storageClassName": pvc.spec.storage_class_name or "",
                             "hostPath": {"path": str(path), "type": "DirectoryOrCreate"},
                             "claimRef": {"namespace": ns, "name": name, "uid": pvc.metadata.uid}}}
            try:
                self.core.create_persistent_volume(body)
                log.info("provisioned %s for claim %s/%s", path, ns, name)
            except ApiException as exc:
                if exc.status != 409:
                    raise

    # -- mount points made on the host -------------------------------------------
    def claim_mountpoints(self, paths: List[str]) -> None:
        """Remember which mount points do not exist on the host (podns.sh makes
        them), so they can be removed once no running pod needs them."""
        with self.lock:
            for p in paths:
                top = Path(p)
                if str(top).startswith("/dev/"):
                    continue  # inside the pod's private /dev
                missing = None
                while not top.exists() and top != top.parent:
                    missing, top = top, top.parent
                if missing is not None and missing not in self.made_on_host:
                    self.made_on_host.append(missing)
                self.mountpoints[p] = self.mountpoints.get(p, 0) + 1

    def release_mountpoints(self, paths: List[str]) -> None:
        with self.lock:
            for p in paths:
                if p in self.mountpoints:
                    self.mountpoints[p] -= 1
                    if self.mountpoints[p] <= 0:
                        del self.mountpoints[p]
            if not self.mountpoints:
                self._remove_made_mountpoints()

    def _remove_made_mountpoints(self) -> None:
        for top in self.made_on_host:
            # Only empty directories and empty files: what podns.sh made.
            for path in sorted(top.rglob("*"), key=lambda x: len(x.parts), reverse=True) if top.is_dir() else []:
                if path.is_dir() and not any(path.iterdir()):
                    path.rmdir()
                elif path.is_file() and path.stat().st_size == 0:
                    path.unlink()
            if top.is_dir() and not any(top.iterdir()):
                top.rmdir()
            elif top.is_file() and top.stat().st_size == 0:
                top.unlink()
        self.made_on_host = [t for t in self.made_on_host if t.exists()]

    # -- the loop -------------------------------------------------------------------
    def finished(self, run: PodRun) -> None:
        with self.lock:
            self.runs.pop(run.uid, None)
            self.done.add(run.uid)

    def _ready_to_run(self, pod: dict) -> bool:
        status = pod.get("status") or {}
        if pod["metadata"].get("deletionTimestamp") or status.get("phase") != "Running":
            return False
        states = [cs.get("state") or {} for cs in status.get("containerStatuses") or []]
        # kwok reports every container running; a terminated one was already reported.
        return bool(states) and all("running" in s for s in states)

    def poll_once(self) -> None:
        self.reclaim_once()
        self.provision_once()
        if self.namespace:
            pods = self.core.list_namespaced_pod(self.namespace, label_selector=self.selector)
        else:
            pods = self.core.list_pod_for_all_namespaces(label_selector=self.selector)
        seen = set()
        for obj in pods.items:
            pod = self.api.sanitize_for_serialization(obj)
            uid = pod["metadata"]["uid"]
            seen.add(uid)
            with self.lock:
                known = uid in self.runs or uid in self.done
                run = self.runs.get(uid)
            if run and pod["metadata"].get("deletionTimestamp"):
                run.cancel()
                continue
            if known or not self._ready_to_run(pod):
                continue
            run = PodRun(self, pod)
            with self.lock:
                self.runs[uid] = run
            threading.Thread(target=run.run, name=f"pod-{pod['metadata']['name']}", daemon=True).start()
        # Pods gone from the API server (deleted outright): stop what still runs.
        with self.lock:
            gone = [r for u, r in self.runs.items() if u not in seen]
        for run in gone:
            run.cancel()

    def loop(self) -> None:
        while not self.stopping.is_set():
            try:
                self.poll_once()
            except Exception:  # an API hiccup must not stop the runner
                log.exception("poll failed")
            self.stopping.wait(self.poll_seconds)

    def ensure_storage_class(self) -> None:
        try:
            client.StorageV1Api(self.api).create_storage_class(STORAGE_CLASS)
        except ApiException as exc:
            if exc.status != 409:
                raise

    def start(self) -> "PodRunner":
        self.ensure_storage_class()
        self.thread = threading.Thread(target=self.loop, name="podrunner", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self.thread:
            self.thread.join(timeout=10)
        with self.lock:
            runs = list(self.runs.values())
        for run in runs:
            run.cancel()
        with self.lock:
            self._remove_made_mountpoints()


def main(argv: Optional[List[str]] = None) -> int:
    from hack.cluster import local

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubeconfig", default=str(local.KUBECONFIG))
    parser.add_argument("--root", required=True, help="local directory standing in for the pods' volumes")
    parser.add_argument("--selector", default=DEFAULT_SELECTOR, help="label selector of the pods to run")
    parser.add_argument("--namespace", help="only this namespace (default: all)")
    parser.add_argument("--bin-dir", default=str(REPO / ".venv" / "bin"), help="first on the pods' PATH")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[podrunner] %(asctime)s %(message)s", datefmt="%H:%M:%S")
    api = config.new_client_from_config(config_file=args.kubeconfig)
    runner = PodRunner(api, Path(args.root), args.selector, args.namespace, Path(args.bin_dir)).start()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    log.info("running pods matching %r, volumes under %s", args.selector, runner.root)
    while not stop.wait(1):
        pass
    runner.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
