"""`make demo`: the CPU example end to end on the local cluster, as a user
runs it on theirs.

1. the local cluster: control plane, kwok's simulated nodes, and the real
   node (kubelet + containerd, with emulated Ascend NPUs);
2. `helm install` of the operator's chart into a namespace that enforces Pod
   Security "restricted": the operator runs as the chart's Deployment, in the
   operator image, on the real node;
3. the example's inputs are put on its work volume (a claim the node's
   provisioner makes) through a pod: `kubectl cp` and `kubectl exec`;
4. `kubectl apply -f examples/run-cpu.yaml`: every stage runs as a Job in the
   pipeline-cpu image on the real node, training on NPUs the device plugin
   allocated; `kubectl get mft` is printed as it changes until the run ends.

The same steps serve the end-to-end test (tests/e2e), which also points a
real Prometheus at the operator's pod.
"""
import argparse
import base64
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import yaml

from hack.cluster import local

REPO = local.REPO
CHART = REPO / "charts" / "mathtune-operator"
EXAMPLE = REPO / "examples" / "run-cpu.yaml"
RELEASE = "mathtune"
SYSTEM_NS = "mathtune-system"
# `demo-data` on the seeder pod: it trains a tokenizer and warms the base model up
# (~3.5 min on 2 quiet cores, more when they are shared).
DEMO_DATA_TIMEOUT = 900
# The pipeline image's user (images/pipeline-cpu/Dockerfile).
STAGE_UID = 10001


def say(msg: str) -> None:
    print(f"[demo] {msg}", flush=True)


def kubectl(*args: str, kubeconfig: Optional[Path] = None, check: bool = True, input: Optional[str] = None,
            timeout: float = 120):
    return local.kubectl(*args, kubeconfig=kubeconfig, check=check, input=input, timeout=timeout)


def streamed(kubeconfig: Path, *args: str, timeout: float) -> None:
    """kubectl with its output shown line by line, each with the seconds since it started."""
    started = time.monotonic()
    proc = subprocess.Popen([str(local.KUBECTL), "--kubeconfig", str(kubeconfig), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)
    assert proc.stdout is not None
    for line in proc.stdout:
        say(f"  +{time.monotonic() - started:4.0f}s {line.rstrip()}")
        if time.monotonic() - started > timeout:
            proc.kill()
    if proc.wait() != 0:
        raise RuntimeError(f"kubectl {' '.join(args[:4])} ... failed (exit {proc.returncode})")


def helm(*args: str, kubeconfig: Path) -> subprocess.CompletedProcess:
    if not local.HELM.exists():
        raise SystemExit(f"helm not found at {local.HELM}: run `make binaries`")
    done = subprocess.run([str(local.HELM), *args, "--kubeconfig", str(kubeconfig)], capture_output=True,
                          text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"helm {' '.join(args[:2])} failed ({done.returncode}): {done.stderr.strip()}")
    return done


def restricted_namespace(kubeconfig: Path, namespace: str) -> None:
    """The namespace, enforcing Pod Security "restricted" (real admission)."""
    kubectl("create", "namespace", namespace, kubeconfig=kubeconfig, check=False)
    kubectl("label", "--overwrite", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted",
            "pod-security.kubernetes.io/enforce-version=latest", kubeconfig=kubeconfig)


def install_chart(kubeconfig: Path, release: str = RELEASE, namespace: str = SYSTEM_NS,
                  values: Optional[Dict[str, str]] = None, string_values: Optional[Dict[str, str]] = None,
                  refresh_crd: bool = True) -> None:
    """helm upgrade --install: the CRD, the account, its RBAC, the Deployment.
    values are --set (helm types them); string_values --set-string.
    refresh_crd=False: the caller keeps the cluster's CRD current itself."""
    sets = []
    for k, v in (values or {}).items():
        sets += ["--set", f"{k}={v}"]
    for k, v in (string_values or {}).items():
        sets += ["--set-string", f"{k}={v}"]
    helm("upgrade", "--install", release, str(CHART), "--namespace", namespace, "--create-namespace", *sets,
         kubeconfig=kubeconfig)
    if not refresh_crd:
        return
    # helm installs a CRD only when absent; keep the cluster's copies current.
    for plural in ("mathfinetunes", "mathfinetunesweeps"):
        crd = CHART / "crds" / f"mathtune.dev_{plural}.yaml"
        kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd), kubeconfig=kubeconfig)
        kubectl("wait", "--for=condition=Established", f"crd/{plural}.mathtune.dev", "--timeout=60s",
                kubeconfig=kubeconfig)


def service_account_kubeconfig(admin_kubeconfig: Path, dest: Path, release: str = RELEASE,
                               namespace: str = SYSTEM_NS, hours: int = 4) -> Path:
    """A kubeconfig holding a token of the chart's ServiceAccount: whoever uses
    it has the chart's RBAC and nothing more."""
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=str(admin_kubeconfig))
    token = client.CoreV1Api(api).create_namespaced_service_account_token(
        f"{release}-mathtune-operator", namespace,
        {"spec": {"expirationSeconds": hours * 3600}}).status.token
    admin = yaml.safe_load(admin_kubeconfig.read_text())
    cluster = admin["clusters"][0]["cluster"]
    if "certificate-authority" in cluster and "certificate-authority-data" not in cluster:
        cluster = dict(cluster)
        cluster["certificate-authority-data"] = base64.b64encode(
            Path(cluster.pop("certificate-authority")).read_bytes()).decode()
    dest.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "local", "cluster": cluster}],
        "users": [{"name": "mathtune-operator", "user": {"token": token}}],
        "contexts": [{"name": "operator", "context": {"cluster": "local", "user": "mathtune-operator"}}],
        "current-context": "operator"}))
    dest.chmod(0o600)
    return dest


class Stack:
    """The chart installed and its operator running as the chart's
    Deployment, in its image, on the real node; uninstalled by `uninstall()`.

    watch_namespace: None = cluster scope (the demo); a name = the chart's
    namespace scope, the release confined to that namespace (the tests, which
    share the cluster). operator_env: extra environment of the operator's
    container (the chart's operator.extraEnv). restricted: the namespace
    enforces Pod Security "restricted" (False for tests whose simulated
    Ascend stage pods mount the NPU driver from the host, which it forbids).
    """

    def __init__(self, kubeconfig: Path, out: Path, release: str = RELEASE, namespace: str = SYSTEM_NS,
                 watch_namespace: Optional[str] = None, operator_env: Optional[Dict[str, str]] = None,
                 restricted: bool = True):
        self.kubeconfig, self.out, self.restricted = kubeconfig, Path(out), restricted
        self.release, self.namespace, self.watch_namespace = release, namespace, watch_namespace
        self.operator_env = operator_env or {}
        self.deployment = f"{release}-mathtune-operator"
        self.operator_pod: Optional[dict] = None

    def values(self) -> Tuple[Dict[str, str], Dict[str, str]]:
        """The chart's values: (--set, --set-string)."""
        values = {}
        if self.watch_namespace:
            values.update({"watch.scope": "namespace", "watch.namespaces": "{%s}" % self.watch_namespace})
        # The chart's default image name (mathtune/operator:<appVersion>) is
        # what the node tagged this checkout's build with; the build's digest
        # as a pod annotation rolls the Deployment when the image changes.
        digest = local.image_refs()["OPERATOR_IMAGE"].rsplit(":", 1)[1]
        strings = {"podAnnotations.mathtune\\.dev/operator-image-digest": digest}
        for i, (key, value) in enumerate(sorted(self.operator_env.items())):
            strings[f"operator.extraEnv[{i}].name"] = key
            strings[f"operator.extraEnv[{i}].value"] = value
        return values, strings

    def __enter__(self) -> "Stack":
        self.out.mkdir(parents=True, exist_ok=True)
        if self.restricted:
            restricted_namespace(self.kubeconfig, self.namespace)
        say(f"helm install {self.release} charts/mathtune-operator -n {self.namespace}"
            + (" (Pod Security: restricted)" if self.restricted else ""))
        values, strings = self.values()
        install_chart(self.kubeconfig, self.release, self.namespace, values, strings)
        say(f"waiting for deployment/{self.deployment} (the operator image on the real node)")
        waited = kubectl("rollout", "status", "-n", self.namespace, f"deployment/{self.deployment}",
                         "--timeout=240s", kubeconfig=self.kubeconfig, check=False)
        if waited.returncode != 0:
            raise RuntimeError(f"the operator's Deployment did not become available: {waited.stderr}\n"
                               + self._explain())
        self.operator_pod = self._pod()
        say(f"operator pod {self.operator_pod['metadata']['name']} on node {self.operator_pod['spec']['nodeName']}")
        return self

    def _pod(self) -> dict:
        pods = json.loads(kubectl("get", "pods", "-n", self.namespace, "-l",
                                  f"app.kubernetes.io/instance={self.release}", "-o", "json",
                                  kubeconfig=self.kubeconfig).stdout)["items"]
        running = [p for p in pods if p["status"].get("phase") == "Running" and not p["metadata"].get(
            "deletionTimestamp")]
        if len(running) != 1:
            raise RuntimeError(f"expected one running operator pod, found {[p['metadata']['name'] for p in pods]}")
        return running[0]

    def _explain(self) -> str:
        return kubectl("describe", "pods", "-n", self.namespace, "-l", f"app.kubernetes.io/instance={self.release}",
                       kubeconfig=self.kubeconfig, check=False).stdout[-4000:]

    @property
    def metrics_target(self) -> str:
        """host:port of the operator pod's metrics, reachable from this machine
        (the pod network is this machine's bridge)."""
        container = self.operator_pod["spec"]["containers"][0]
        port = next(p["containerPort"] for p in container.get("ports", []) if p.get("name") == "metrics")
        return f"{self.operator_pod['status']['podIP']}:{port}"

    def operator_logs(self) -> str:
        return kubectl("logs", "-n", self.namespace, f"deployment/{self.deployment}", "--tail=-1",
                       kubeconfig=self.kubeconfig, check=False).stdout

    def __exit__(self, *exc) -> None:
        (self.out / "operator.log").write_text(self.operator_logs())

    def uninstall(self) -> None:
        helm("uninstall", self.release, "--namespace", self.namespace, kubeconfig=self.kubeconfig)


def _uris(node) -> List[str]:
    """Every input file of a spec (each `uri`, and the model's `checkpoint`), leaving out sections
    turned off (enabled: false)."""
    if isinstance(node, dict):
        if node.get("enabled") is False:
            return []
        return [u for k, v in node.items()
                for u in ([v] if k in ("uri", "checkpoint") and isinstance(v, str) and v else _uris(v))]
    if isinstance(node, list):
        return [u for v in node for u in _uris(v)]
    return []


def seeder_pod(name: str, claim: str, image: str, data_path: str) -> dict:
    """A pod that holds the work volume open while the inputs are copied in:
    the pipeline image (it has `mathtune-pipeline demo-data` and tar, which
    `kubectl cp` needs), as restricted as a stage pod."""
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "mathtune-seeder"}},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "securityContext": {"runAsNonRoot": True, "runAsUser": STAGE_UID, "runAsGroup": STAGE_UID,
                                "fsGroup": STAGE_UID, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "seeder", "image": image, "imagePullPolicy": "IfNotPresent",
                "command": ["sleep", "3600"], "workingDir": "/tmp",
                "env": [{"name": "HOME", "value": "/tmp/home"}],
                "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]}},
                "volumeMounts": [{"name": "work", "mountPath": data_path}, {"name": "tmp", "mountPath": "/tmp"}],
            }],
            "volumes": [{"name": "work", "persistentVolumeClaim": {"claimName": claim}},
                        {"name": "tmp", "emptyDir": {}}],
        },
    }


def seed_work_volume(kubeconfig: Path, doc: dict, ns: str, timeout: float = 240,
                     made: Optional[Path] = None) -> str:
    """Put the run's input files on its work volume before the run starts, as
    a user would on a real cluster: the claim the operator will use is made
    first (the operator then finds it; the node's provisioner makes its
    volume), and every `uri` of the spec under `<dataPath>/fixtures/` is
    copied in from `made` (a directory demo-data filled earlier) with
    `kubectl cp`, or made by the pipeline's demo-data tool (`kubectl exec`)
    when not there. Returns the claim's name."""
    spec, name = doc["spec"], doc["metadata"]["name"]
    storage = spec.get("storage") or {}
    data_path = storage.get("dataPath", "/data").rstrip("/")
    claim = storage.get("pvcName") or f"{name}-work"
    image = (spec.get("images") or {})["pipeline"]
    claim_doc = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                 "metadata": {"name": claim, "labels": {"mathtune.dev/run": name}},
                 "spec": {"accessModes": ["ReadWriteOnce"],
                          "resources": {"requests": {"storage": storage.get("size", "1Gi")}}}}
    if storage.get("storageClassName"):
        claim_doc["spec"]["storageClassName"] = storage["storageClassName"]
    pod = f"{name}-seeder"
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(claim_doc), kubeconfig=kubeconfig)
    kubectl("delete", "pod", "-n", ns, pod, "--ignore-not-found", "--wait=true", kubeconfig=kubeconfig)
    kubectl("apply", "-n", ns, "-f", "-", input=json.dumps(seeder_pod(pod, claim, image, data_path)),
            kubeconfig=kubeconfig)
    try:
        kubectl("wait", "-n", ns, f"pod/{pod}", "--for=condition=Ready", f"--timeout={int(timeout)}s",
                kubeconfig=kubeconfig)
        missing = []
        for uri in _uris(spec):
            if not uri.startswith(data_path + "/fixtures/"):
                continue
            relative = uri[len(data_path + "/fixtures/"):]
            src = made / relative if made is not None else None
            if src is not None and src.is_file():
                kubectl("exec", "-n", ns, pod, "--", "mkdir", "-p", str(Path(uri).parent), kubeconfig=kubeconfig)
                kubectl("cp", str(src), f"{ns}/{pod}:{uri}", kubeconfig=kubeconfig)
            else:
                missing.append(uri)
        if missing:
            # demo-data trains the example's tokenizer and warms its base model up: minutes, not
            # seconds, so its lines are shown as they come.
            say("making the example's inputs on the work volume (mathtune-pipeline demo-data, ~3.5 min)")
            streamed(kubeconfig, "exec", "-n", ns, pod, "--", "mathtune-pipeline", "demo-data",
                     "--out", f"{data_path}/fixtures", timeout=DEMO_DATA_TIMEOUT)
            still = [u for u in missing
                     if kubectl("exec", "-n", ns, pod, "--", "test", "-f", u, kubeconfig=kubeconfig,
                                check=False).returncode != 0]
            if still:
                raise RuntimeError(f"no input for {still}: `mathtune-pipeline demo-data` does not make it")
    finally:
        kubectl("delete", "pod", "-n", ns, pod, "--ignore-not-found", "--wait=true", kubeconfig=kubeconfig)
    say(f"work volume {ns}/{claim} holds the example's inputs")
    return claim


def volume_path(kubeconfig: Path, ns: str, claim: str) -> Path:
    """Where the claim's volume lives on the real node (this machine)."""
    pv = kubectl("get", "pvc", "-n", ns, claim, "-o", "jsonpath={.spec.volumeName}", kubeconfig=kubeconfig).stdout
    spec = json.loads(kubectl("get", "pv", pv, "-o", "json", kubeconfig=kubeconfig).stdout)["spec"]
    return Path((spec.get("hostPath") or spec.get("local"))["path"])


def run_name_and_namespace(example: Path) -> Tuple[str, str]:
    doc = yaml.safe_load(example.read_text())
    return doc["metadata"]["name"], doc["metadata"].get("namespace", "default")


def phase_of(kubeconfig: Path, ns: str, name: str) -> str:
    out = kubectl("get", "mft", "-n", ns, name, "-o", "jsonpath={.status.phase}", kubeconfig=kubeconfig, check=False)
    return out.stdout.strip()


def watch_run(kubeconfig: Path, ns: str, name: str, timeout: float, echo=print) -> str:
    """Prints `kubectl get mft` whenever it changes (AGE aside); returns the final phase."""
    deadline = time.monotonic() + timeout
    last = None
    header_shown = False
    while True:
        table = kubectl("get", "mft", "-n", ns, name, kubeconfig=kubeconfig, check=False).stdout.rstrip()
        rows = table.splitlines()
        if len(rows) >= 2:
            # The last column is AGE: it changes every second, the run does not.
            key = rows[-1].rsplit(None, 1)[0]
            if key != last:
                echo("\n".join(rows) if not header_shown else rows[-1])
                header_shown, last = True, key
        phase = phase_of(kubeconfig, ns, name)
        if phase in ("Succeeded", "Failed"):
            return phase
        if time.monotonic() > deadline:
            return phase or "Unknown"
        time.sleep(2)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="run the CPU example end to end on the local cluster")
    parser.add_argument("--example", default=str(EXAMPLE))
    parser.add_argument("--out", default=str(REPO / "out" / "demo"), help="logs")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the run")
    args = parser.parse_args(argv)

    started = time.monotonic()
    kubeconfig = local.KUBECONFIG
    example = Path(args.example).resolve()
    name, ns = run_name_and_namespace(example)

    with Stack(kubeconfig, Path(args.out).resolve()):
        # A fresh run every time: a finished one would only be reported again,
        # and its work volume (kept on purpose when a run is deleted) would let
        # every stage skip as already done.
        kubectl("delete", "mft", "-n", ns, name, "--ignore-not-found", "--wait=true", kubeconfig=kubeconfig)
        kubectl("delete", "pvc", "-n", ns, f"{name}-work", "--ignore-not-found", "--wait=true", kubeconfig=kubeconfig)
        claim = seed_work_volume(kubeconfig, yaml.safe_load(example.read_text()), ns)
        shown = example.relative_to(REPO) if example.is_relative_to(REPO) else example
        say(f"kubectl apply -f {shown}")
        print(kubectl("apply", "-f", str(example), kubeconfig=kubeconfig).stdout.rstrip(), flush=True)
        say("kubectl get mft (printed as it changes):")
        phase = watch_run(kubeconfig, ns, name, args.timeout, echo=lambda s: print(s, flush=True))
        print(flush=True)
        print(kubectl("get", "mft", "-n", ns, name, "-o", "wide", kubeconfig=kubeconfig).stdout.rstrip(), flush=True)
        say(f"kubectl mathtune results -n {ns} {name}")
        plugin = Path(sys.executable).with_name("kubectl-mathtune")
        subprocess.run([str(plugin), "--kubeconfig", str(kubeconfig), "-n", ns, "results", name], check=False)
        say("the pods (operator and stages) and where they ran:")
        print(kubectl("get", "pods", "-A", "-o", "wide", "-l", "app.kubernetes.io/name in (mathtune-operator)",
                      kubeconfig=kubeconfig).stdout.rstrip(), flush=True)
        print(kubectl("get", "pods", "-n", ns, "-o",
                      "custom-columns=POD:.metadata.name,NODE:.spec.nodeName,PHASE:.status.phase,"
                      "IMAGE-ID:.status.containerStatuses[0].imageID", "-l", f"mathtune.dev/run={name}",
                      kubeconfig=kubeconfig).stdout.rstrip(), flush=True)
        say(f"artifacts: {volume_path(kubeconfig, ns, claim) / 'runs' / name} (on the node)")
        say(f"run {ns}/{name}: {phase} after {time.monotonic() - started:.0f}s")
        say(f"more: eval \"$(make -s kubeconfig)\"; export PATH=$PWD/.venv/bin:$PATH; "
            f"kubectl mathtune status -n {ns} {name}; kubectl mathtune logs -n {ns} {name} --stage train")
        return 0 if phase == "Succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
