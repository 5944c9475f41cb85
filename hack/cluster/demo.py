"""`make demo`: the CPU example end to end on the local cluster.

1. the local control plane (up.sh) with kwok's simulated nodes;
2. `helm install` of the operator's chart (CRD, ServiceAccount, RBAC,
   Deployment; the Deployment's pod is one of kwok's: it runs nothing);
3. the operator itself runs here, as the chart's ServiceAccount (a token from
   the TokenRequest API) with the chart's own command-line flags, so it can do
   exactly what the chart's RBAC lets it do and no more;
4. the local pod runner (podrunner.py) runs every stage pod's command on this
   machine with the CPU profile;
5. `kubectl apply -f examples/run-cpu.yaml`, then `kubectl get mft` as it
   changes, until the run Succeeds or Fails.

The same steps serve the end-to-end test (tests/e2e), which also points a
real Prometheus at the operator's metrics.
"""
import argparse
import base64
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Dict, List, Optional

import yaml

from hack.cluster import local

REPO = local.REPO
CHART = REPO / "charts" / "mathtune-operator"
EXAMPLE = REPO / "examples" / "run-cpu.yaml"
RELEASE = "mathtune"
SYSTEM_NS = "mathtune-system"
KUBE_VERSION = local.VERSIONS["KUBE_VERSION"].lstrip("v")


def say(msg: str) -> None:
    print(f"[demo] {msg}", flush=True)


def kubectl(*args: str, kubeconfig: Optional[Path] = None, check: bool = True, input: Optional[str] = None):
    return local.kubectl(*args, kubeconfig=kubeconfig, check=check, input=input)


def helm(*args: str, kubeconfig: Path) -> subprocess.CompletedProcess:
    if not local.HELM.exists():
        raise SystemExit(f"helm not found at {local.HELM}: run `make binaries`")
    return subprocess.run([str(local.HELM), *args, "--kubeconfig", str(kubeconfig)], capture_output=True,
                          text=True, check=True, timeout=300)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def install_chart(kubeconfig: Path, release: str = RELEASE, namespace: str = SYSTEM_NS,
                  values: Optional[Dict[str, str]] = None) -> None:
    """helm upgrade --install: the CRD, the account, its RBAC, the Deployment."""
    sets = []
    for k, v in (values or {}).items():
        sets += ["--set", f"{k}={v}"]
    helm("upgrade", "--install", release, str(CHART), "--namespace", namespace, "--create-namespace", *sets,
         kubeconfig=kubeconfig)
    # helm installs a CRD only when absent; keep the cluster's copy current.
    crd = CHART / "crds" / "mathtune.dev_mathfinetunes.yaml"
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd), kubeconfig=kubeconfig)
    kubectl("wait", "--for=condition=Established", "crd/mathfinetunes.mathtune.dev", "--timeout=60s",
            kubeconfig=kubeconfig)


def chart_operator_args(kubeconfig: Path, release: str = RELEASE, namespace: str = SYSTEM_NS) -> List[str]:
    """The operator container's args exactly as the installed chart renders them."""
    dep = kubectl("get", "deployment", "-n", namespace, f"{release}-mathtune-operator", "-o", "yaml",
                  kubeconfig=kubeconfig).stdout
    (container,) = yaml.safe_load(dep)["spec"]["template"]["spec"]["containers"]
    return list(container.get("command") or []) + list(container.get("args") or [])


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


class Operator:
    """mathtune-operator as a local process with the chart's flags, its health
    and metrics endpoints moved to loopback ports."""

    def __init__(self, args: List[str], kubeconfig: Path, log_path: Path, bin_dir: Path = REPO / ".venv" / "bin",
                 env: Optional[Dict[str, str]] = None):
        self.health_port, self.metrics_port = free_port(), free_port()
        argv = []
        for a in args:
            if a.startswith("--liveness="):
                a = f"--liveness=http://127.0.0.1:{self.health_port}/healthz"
            elif a.startswith("--metrics-port="):
                a = f"--metrics-port={self.metrics_port}"
            argv.append(a)
        if argv and argv[0] != "mathtune-operator":
            argv.insert(0, "mathtune-operator")
        argv[0] = str(bin_dir / argv[0])
        self.argv = argv
        self.env = {**os.environ, **(env or {}), "KUBECONFIG": str(kubeconfig)}
        self.log_path = log_path
        self.proc: Optional[subprocess.Popen] = None

    @property
    def metrics_target(self) -> str:
        return f"127.0.0.1:{self.metrics_port}"

    def start(self, timeout: float = 120) -> "Operator":
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(self.argv, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the operator did not become healthy; see {self.log_path}:\n"
                                   + self.log_path.read_text()[-3000:])
            time.sleep(0.5)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if getattr(self, "log", None):
            self.log.close()


class Stack:
    """The chart installed, the operator running here as its ServiceAccount,
    and the local pod runner: everything a run needs, stopped on exit.

    watch_namespace: None = cluster scope (the demo); a name = the chart's
    namespace scope, with the release, the operator and the pod runner all
    confined to that namespace (the tests, which share the cluster).
    run_pods=False leaves stage pods to the caller (tests that play them).
    """

    def __init__(self, kubeconfig: Path, out: Path, release: str = RELEASE, namespace: str = SYSTEM_NS,
                 watch_namespace: Optional[str] = None, run_pods: bool = True,
                 operator_env: Optional[Dict[str, str]] = None):
        self.kubeconfig, self.out = kubeconfig, Path(out)
        self.run_pods, self.operator_env = run_pods, operator_env
        self.release, self.namespace, self.watch_namespace = release, namespace, watch_namespace
        self.operator: Optional[Operator] = None
        self.runner = None

    def __enter__(self) -> "Stack":
        import logging

        from kubernetes import config
        from hack.cluster.podrunner import PodRunner

        self.out.mkdir(parents=True, exist_ok=True)
        values = {}
        if self.watch_namespace:
            values = {"watch.scope": "namespace", "watch.namespaces": "{%s}" % self.watch_namespace}
        say(f"installing the chart (release {self.release}, namespace {self.namespace})")
        install_chart(self.kubeconfig, self.release, self.namespace, values)
        sa = service_account_kubeconfig(self.kubeconfig, self.out / "operator.kubeconfig", self.release, self.namespace)
        say(f"starting the operator here as ServiceAccount {self.namespace}/{self.release}-mathtune-operator "
            f"(log: {self.out / 'operator.log'})")
        self.operator = Operator(chart_operator_args(self.kubeconfig, self.release, self.namespace), sa,
                                 self.out / "operator.log", env=self.operator_env)
        try:
            self.operator.start()
            if not self.run_pods:
                return self
            say(f"starting the local pod runner (volumes under {self.out / 'pods'}, log: {self.out / 'podrunner.log'})")
            handler = logging.FileHandler(self.out / "podrunner.log", mode="w")
            handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
            self._handler = handler
            logging.getLogger("podrunner").addHandler(handler)
            logging.getLogger("podrunner").setLevel(logging.INFO)
            api = config.new_client_from_config(config_file=str(self.kubeconfig))
            self.runner = PodRunner(api, self.out / "pods", namespace=self.watch_namespace).start()
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self.runner:
            self.runner.stop()
            logging_handler = getattr(self, "_handler", None)
            if logging_handler:
                import logging

                logging.getLogger("podrunner").removeHandler(logging_handler)
                logging_handler.close()
        if self.operator:
            self.operator.stop()

    def uninstall(self) -> None:
        helm("uninstall", self.release, "--namespace", self.namespace, kubeconfig=self.kubeconfig)

    def claim_dirs(self, ns: str) -> List[Path]:
        return sorted((self.out / "pods" / "pvc" / ns).glob("*"))


def shared_fixtures() -> Path:
    """../shared/fixtures next to the checkout (or MATHTUNE_SHARED_FIXTURES)."""
    path = Path(os.environ.get("MATHTUNE_SHARED_FIXTURES", REPO.parent / "shared" / "fixtures"))
    if not path.is_dir():
        raise SystemExit(f"real fixtures not found at {path}: clone the project next to shared/ "
                         f"or set MATHTUNE_SHARED_FIXTURES")
    return path


def _uris(node) -> List[str]:
    """Every `uri` of a spec, leaving out sections turned off (enabled: false)."""
    if isinstance(node, dict):
        if node.get("enabled") is False:
            return []
        return [u for k, v in node.items() for u in ([v] if k == "uri" and isinstance(v, str) else _uris(v))]
    if isinstance(node, list):
        return [u for v in node for u in _uris(v)]
    return []


def seed_work_volume(kubeconfig: Path, stack: "Stack", doc: dict, ns: str, timeout: float = 120) -> Path:
    """Put the run's input files on its work volume before the run starts, as
    a user would on a real cluster: the claim the operator will use is made
    first (the operator then finds it), and every `uri` of the spec under
    `<dataPath>/fixtures/` is filled from ../shared/fixtures, or by the
    pipeline's demo-data tool for what is not there (a small SQuAD set)."""
    from kubernetes import client, config

    spec, name = doc["spec"], doc["metadata"]["name"]
    storage = spec.get("storage") or {}
    data_path = storage.get("dataPath", "/data").rstrip("/")
    claim = storage.get("pvcName") or f"{name}-work"
    api = config.new_client_from_config(config_file=str(kubeconfig))
    core = client.CoreV1Api(api)
    try:
        core.create_namespaced_persistent_volume_claim(ns, {
            "metadata": {"name": claim, "labels": {"mathtune.dev/run": name}},
            "spec": {"accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": storage.get("size", "1Gi")}}}})
    except client.exceptions.ApiException as exc:
        if exc.status != 409:
            raise
    deadline = time.monotonic() + timeout
    while core.read_namespaced_persistent_volume_claim(claim, ns).status.phase != "Bound":
        if time.monotonic() > deadline:
            raise RuntimeError(f"claim {ns}/{claim} not bound after {timeout}s (is the pod runner provisioning?)")
        time.sleep(0.5)
    volume = stack.runner.claim_path(ns, claim)
    fixtures = shared_fixtures()
    missing = []
    for uri in _uris(spec):
        if not uri.startswith(data_path + "/"):
            continue
        rel = uri[len(data_path) + 1:]
        dest = volume / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        src = fixtures / rel.split("fixtures/", 1)[-1] if rel.startswith("fixtures/") else None
        if src is not None and src.is_file():
            shutil.copyfile(src, dest)
        elif not dest.exists():
            missing.append((uri, dest))
    if missing:
        subprocess.run([str(REPO / ".venv" / "bin" / "mathtune-pipeline"), "demo-data", "--out",
                        str(volume / "fixtures"), "--fixtures", str(fixtures)], check=True)
        still = [uri for uri, dest in missing if not dest.exists()]
        if still:
            raise RuntimeError(f"no input for {still}: neither in {fixtures} nor made by `mathtune-pipeline demo-data`")
    say(f"work volume {ns}/{claim} seeded with the example's inputs ({volume})")
    return volume


def run_name_and_namespace(example: Path) -> (str, str):
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
    parser.add_argument("--out", default=str(REPO / "out" / "demo"), help="logs, and the pods' volumes")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the run")
    args = parser.parse_args(argv)

    started = time.monotonic()
    out = Path(args.out).resolve()
    kubeconfig = local.KUBECONFIG
    example = Path(args.example).resolve()
    name, ns = run_name_and_namespace(example)

    with Stack(kubeconfig, out) as stack:
        # A fresh run every time: a finished one would only be reported again,
        # and its work volume (kept on purpose when a run is deleted) would let
        # every stage skip as already done.
        kubectl("delete", "mft", "-n", ns, name, "--ignore-not-found", "--wait=true", kubeconfig=kubeconfig)
        kubectl("delete", "pvc", "-n", ns, f"{name}-work", "--ignore-not-found", "--wait=true", kubeconfig=kubeconfig)
        seed_work_volume(kubeconfig, stack, yaml.safe_load(example.read_text()), ns)
        shown = example.relative_to(REPO) if example.is_relative_to(REPO) else example
        say(f"kubectl apply -f {shown}")
        print(kubectl("apply", "-f", str(example), kubeconfig=kubeconfig).stdout.rstrip(), flush=True)
        say("kubectl get mft (printed as it changes):")
        phase = watch_run(kubeconfig, ns, name, args.timeout, echo=lambda s: print(s, flush=True))
        print(flush=True)
        print(kubectl("get", "mft", "-n", ns, name, "-o", "wide", kubeconfig=kubeconfig).stdout.rstrip(), flush=True)
        results = kubectl("get", "mft", "-n", ns, name, "-o", "jsonpath={.status.results}",
                          kubeconfig=kubeconfig).stdout
        if results:
            import json

            say("results (status.results):")
            print(json.dumps(json.loads(results), indent=2), flush=True)
        for claim in stack.claim_dirs(ns):
            run_dir = claim / "runs" / name
            if run_dir.exists():
                say(f"artifacts: {run_dir}")
        say(f"run {ns}/{name}: {phase} after {time.monotonic() - started:.0f}s")
        say(f"more: eval \"$(make -s kubeconfig)\"; kubectl describe mft -n {ns} {name}")
        return 0 if phase == "Succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
