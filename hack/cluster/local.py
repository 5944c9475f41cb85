"""The local control plane from Python: find it, start it, stop it.

Used by the pytest session fixture and by the demo. The shell scripts beside
this file do the work; this module only decides whether to call them.
"""
import os
import subprocess
from pathlib import Path
from typing import Dict, Optional

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


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


def missing_binaries() -> list:
    wanted = [KUBE_BIN / n for n in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")]
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


def up() -> Path:
    subprocess.run(["bash", str(HERE / "up.sh")], check=True)
    return KUBECONFIG


def down() -> None:
    subprocess.run(["bash", str(HERE / "down.sh")], check=True)


def kubectl(*args: str, kubeconfig: Optional[Path] = None, check: bool = True, input: Optional[str] = None) -> subprocess.CompletedProcess:
    cmd = [str(KUBECTL), "--kubeconfig", str(kubeconfig or KUBECONFIG), *args]
    return subprocess.run(cmd, capture_output=True, text=True, check=check, input=input, timeout=120)
