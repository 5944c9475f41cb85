"""The local cluster from Python: find it, start it, stop it.

The local cluster is the control plane with kwok's simulated nodes
(hack/cluster/up.sh) and one real node, kubelet + containerd
(hack/node/up.sh). Used by the pytest session fixture and by the demo. The
shell scripts do the work; this module only decides whether to call them.
"""
import os
import subprocess
from pathlib import Path
from typing import Dict, Optional

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
NODE_SCRIPTS = REPO / "hack" / "node"
IMAGES_SCRIPT = REPO / "hack" / "images" / "build.sh"
# The real node's name (hack/node/common.sh).
REAL_NODE = "mathtune-node"
# A file named after an NPU here makes the node's device plugin report that
# NPU Unhealthy (hack/node/common.sh HEALTH_DIR; hack/ascend-device-plugin).
NPU_HEALTH_DIR = Path("/run/mathtune-node/npu-health")


def _versions() -> Dict[str, str]:
    out = {}
    for line in (HERE / "versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            out[key] = value
    return out


VERSIONS = _versions()
CACHE = Path(os.environ.get("MATHTUNE_CACHE", Path.home() / ".cache" / "mathtune"))
CLUSTER_NAME = os.environ.get("MATHTUNE_CLUSTER_NAME", "mathtune")
KUBECONFIG = CACHE / f"kubeconfig-{CLUSTER_NAME}.yaml"
KUBE_BIN = CACHE / "bin" / f"kubernetes-{VERSIONS['KUBE_VERSION']}"
HELM_BIN = CACHE / "bin" / f"helm-{VERSIONS['HELM_VERSION']}"
KUBECTL = KUBE_BIN / "kubectl"
HELM = HELM_BIN / "helm"
KUEUE = CACHE / "bin" / f"kueue-{VERSIONS['KUEUE_VERSION']}" / "kueue"
# kueue.sh serves Kueue's health endpoint here (KUEUE_HEALTH_PORT).
KUEUE_HEALTH = f"http://127.0.0.1:{os.environ.get('KUEUE_HEALTH_PORT', '18081')}/readyz"


def missing_binaries() -> list:
    wanted = [KUBE_BIN / n for n in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl",
                                     "kubelet", "kube-proxy")]
    wanted += [CACHE / "bin" / f"etcd-{VERSIONS['ETCD_VERSION']}" / "etcd",
               CACHE / "bin" / f"kwok-{VERSIONS['KWOK_VERSION']}" / "kwokctl", HELM]
    return [str(p) for p in wanted if not os.access(p, os.X_OK)]


def config_current() -> bool:
    """Was the running local cluster made from today's kwok.yaml? (up.sh records its digest.)"""
    import hashlib

    recorded = CACHE / "kwok" / "clusters" / CLUSTER_NAME / "mathtune-kwok.sha256"
    want = hashlib.sha256((HERE / "kwok.yaml").read_bytes()).hexdigest()
    return recorded.exists() and recorded.read_text().strip() == want


def healthy(kubeconfig: Path = KUBECONFIG) -> bool:
    if not kubeconfig.exists() or not KUBECTL.exists():
        return False
    if kubeconfig == KUBECONFIG and not config_current():
        return False  # up.sh recreates a cluster made from an older kwok.yaml
    probe = subprocess.run([str(KUBECTL), "--kubeconfig", str(kubeconfig), "get", "--raw", "/readyz"],
                           capture_output=True, text=True, timeout=20)
    return probe.returncode == 0


def real_node_ready(kubeconfig: Path = KUBECONFIG) -> bool:
    probe = subprocess.run([str(KUBECTL), "--kubeconfig", str(kubeconfig), "get", "node", REAL_NODE, "-o",
                            'jsonpath={.status.conditions[?(@.type=="Ready")].status}'],
                           capture_output=True, text=True, timeout=20)
    return probe.returncode == 0 and probe.stdout.strip() == "True"


def up() -> Path:
    """Control plane, then the real node; both scripts leave what runs alone."""
    subprocess.run(["bash", str(HERE / "up.sh")], check=True)
    subprocess.run(["bash", str(NODE_SCRIPTS / "up.sh")], check=True)
    return KUBECONFIG


def import_images() -> None:
    """The images this checkout built, imported into the running node where missing (node/up.sh is idempotent)."""
    subprocess.run(["bash", str(NODE_SCRIPTS / "up.sh")], check=True)


def down() -> None:
    subprocess.run(["bash", str(NODE_SCRIPTS / "down.sh")], check=True)
    subprocess.run(["bash", str(HERE / "down.sh")], check=True)


def kueue_missing() -> Optional[str]:
    """Kueue's binary when it is not built (`make binaries`), else None."""
    return None if os.access(KUEUE, os.X_OK) else str(KUEUE)


def kueue_running() -> bool:
    """Does a Kueue controller answer on this machine (kueue.sh up)?"""
    import urllib.request

    try:
        with urllib.request.urlopen(KUEUE_HEALTH, timeout=2) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


def kueue_up() -> None:
    """Start Kueue's controller on the local cluster (idempotent); returns
    once its webhooks answer and its queues exist (hack/cluster/kueue.sh)."""
    subprocess.run(["bash", str(HERE / "kueue.sh"), "up"], check=True)


def kueue_down() -> None:
    """Stop it and remove its webhook configurations; CRDs and queues stay."""
    subprocess.run(["bash", str(HERE / "kueue.sh"), "down"], check=True)


def restart_apiserver(kubeconfig: Path = KUBECONFIG, timeout: float = 60) -> None:
    """Kill the running kube-apiserver and start it again with the same
    command line (kwokctl runs it as a plain process; its pid file is
    updated so `make cluster-down` still finds it). For fault tests: every
    watch breaks and requests fail until it is back."""
    restart_component("kube-apiserver", kubeconfig, timeout)


def _alive(pid: int) -> bool:
    """Whether `pid` still runs, sockets and all. A process an earlier restart
    started is this process's child: it is gone once waitpid reaps it (its
    /proc entry stays, a zombie, until then). Another's: gone when none of its
    threads runs. Not the main thread's state alone: when a multi-threaded
    process is killed its main thread can turn zombie while the others still
    exit, holding its listening socket."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        return reaped != pid
    except ChildProcessError:
        pass  # not our child (kwokctl started it): its parent reaps it
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return False
    for thread in threads:
        try:
            state = Path(f"/proc/{pid}/task/{thread}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, IndexError):
            continue
        if state not in ("Z", "X"):
            return True
    return False


def restart_component(name: str, kubeconfig: Path = KUBECONFIG, timeout: float = 60, down: float = 0.0) -> None:
    """Kill one control-plane process (kube-apiserver, etcd, ...), keep it
    down `down` seconds, start it again with the same command line, and wait
    until the API server answers /readyz (which checks etcd too)."""
    import signal
    import time

    cluster_dir = CACHE / "kwok" / "clusters" / CLUSTER_NAME
    pid_file = cluster_dir / "pids" / f"{name}.pid"
    pid = int(pid_file.read_text().strip())
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    cwd = os.readlink(f"/proc/{pid}/cwd")
    # SIGKILL, as a crash or a node loss: a graceful stop drains watches for
    # up to a minute, which is not the fault under test.
    os.kill(pid, signal.SIGKILL)
    while _alive(pid):
        time.sleep(0.1)
    time.sleep(down)
    log = open(cluster_dir / "logs" / f"{name}.log", "ab")
    proc = subprocess.Popen([a.decode() for a in argv], cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    pid_file.write_text(str(proc.pid))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        probe = subprocess.run([str(KUBECTL), "--kubeconfig", str(kubeconfig), "get", "--raw", "/readyz"],
                               capture_output=True, text=True, timeout=20)
        if probe.returncode == 0:
            return
        time.sleep(0.5)
    raise TimeoutError(f"{name} restarted, but the API server is not ready {timeout}s later: see {cluster_dir}/logs")


def image_refs() -> Dict[str, str]:
    """The local images' names (localhost/mathtune/<name>:<digest of inputs>),
    as hack/images/build.sh tags them: OPERATOR_IMAGE, PIPELINE_CPU_IMAGE, ..."""
    out = subprocess.run(["bash", str(IMAGES_SCRIPT), "refs"], capture_output=True, text=True, check=True).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def kubectl(*args: str, kubeconfig: Optional[Path] = None, check: bool = True,
            input: Optional[str] = None, timeout: float = 120) -> subprocess.CompletedProcess:
    cmd = [str(KUBECTL), "--kubeconfig", str(kubeconfig or KUBECONFIG), *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=check, input=input, timeout=timeout)


def set_npu_health(device: str, healthy: bool) -> None:
    """Fail (or mend) one of the real node's emulated NPUs, e.g. Ascend910-3:
    its device plugin reports it through ListAndWatch and its device-info ConfigMap."""
    marker = NPU_HEALTH_DIR / device
    if healthy:
        marker.unlink(missing_ok=True)
    else:
        NPU_HEALTH_DIR.mkdir(parents=True, exist_ok=True)
        marker.touch()
