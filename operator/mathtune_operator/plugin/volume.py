"""Files on a run's work volume, read from outside the cluster: a short-lived pod
that mounts the claim read-only (restricted: non-root, no capabilities) on the
node that holds it, `kubectl cp`/`kubectl exec` through it, and the pod deleted
afterwards, whatever happened."""
import os
import subprocess
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

from kubernetes.client.exceptions import ApiException
from mathtune_api import MathFinetuneSpec, SpecInvalid, parse_spec

from .. import names
from .errors import ERROR, CliError
from .kube import Cluster

UID = 10001


def spec_of(run: Dict[str, Any]) -> MathFinetuneSpec:
    """The run's spec read by the API model, as the operator reads it."""
    try:
        return parse_spec(run.get("spec") or {})
    except SpecInvalid as exc:
        raise CliError(f"run {run['metadata']['name']}: its spec cannot be read: {exc}", ERROR) from None


def claim_of(run: Dict[str, Any]) -> str:
    return spec_of(run).storage.pvc_name or names.claim(run["metadata"]["name"])


def helper_pod(run: Dict[str, Any], pod_name: str) -> Dict[str, Any]:
    """The pod, built from the run's spec (its image, claim, data path, node selector and tolerations). Pure."""
    spec = spec_of(run)
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": pod_name, "labels": {names.LABEL_RUN: run["metadata"]["name"],
                                                  "app.kubernetes.io/managed-by": "kubectl-mathtune"}},
        "spec": {
            "restartPolicy": "Never", "activeDeadlineSeconds": 1800, "terminationGracePeriodSeconds": 0,
            "securityContext": {"runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "nodeSelector": spec.scheduling.node_selector or {},
            "tolerations": list(spec.scheduling.tolerations),
            "containers": [{
                "name": "fetch", "image": spec.images.pipeline, "imagePullPolicy": spec.images.pull_policy,
                "command": ["sleep", "1800"],
                "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]}},
                "volumeMounts": [{"name": "work", "mountPath": spec.storage.data_path, "readOnly": True}],
            }],
            "volumes": [{"name": "work", "persistentVolumeClaim": {"claimName": claim_of(run), "readOnly": True}}],
        },
    }


class Volume:
    def __init__(self, cluster: Cluster, run: Dict[str, Any], pod: str, kubectl: List[str]):
        self.cluster, self.run, self.pod, self.kubectl = cluster, run, pod, kubectl
        self.run_dir = names.run_dir(spec_of(run).storage.data_path, run["metadata"]["name"])

    def _kubectl(self, *args: str, timeout: float = 3600) -> "subprocess.CompletedProcess[bytes]":
        proc = subprocess.run([*self.kubectl, "-n", self.cluster.namespace, *args], capture_output=True,
                              timeout=timeout)
        if proc.returncode != 0:
            raise CliError(f"kubectl {' '.join(args[:2])}: {proc.stderr.decode(errors='replace').strip()}", ERROR)
        return proc

    def read(self, relative: str) -> bytes:
        """A file of the run's directory, whole (small files: scores, outputs)."""
        out: bytes = self._kubectl("exec", self.pod, "--", "cat", f"{self.run_dir}/{relative}").stdout
        return out

    def copy(self, relative: str, dest: Path) -> Path:
        """A file or directory of the run's directory to `dest` (kubectl cp: tar through the pod)."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        self._kubectl("cp", f"{self.pod}:{self.run_dir}/{relative}", str(dest))
        return dest


def kubectl_command(kubeconfig: Optional[str] = None, context: Optional[str] = None) -> List[str]:
    base = [os.environ.get("KUBECTL", "kubectl")]
    if kubeconfig:
        base += ["--kubeconfig", kubeconfig]
    if context:
        base += ["--context", context]
    return base


@contextmanager
def mounted(cluster: Cluster, run: Dict[str, Any], kubectl: List[str], timeout: float = 300) -> Iterator[Volume]:
    """A Volume of the run's claim for the duration of the block; the pod is deleted afterwards."""
    name = f"{run['metadata']['name']}-fetch-{uuid.uuid4().hex[:6]}"
    pod = helper_pod(run, name)
    cluster._call(f"pod {name}", cluster.core.create_namespaced_pod, cluster.namespace, pod)
    try:
        deadline = time.monotonic() + timeout
        while True:
            got = cluster._call(f"pod {name}", cluster.core.read_namespaced_pod, name, cluster.namespace)
            if got.status.phase == "Running":
                break
            waiting = [s.state.waiting.reason for s in got.status.container_statuses or []
                       if s.state and s.state.waiting and s.state.waiting.reason]
            if got.status.phase in ("Failed", "Succeeded") or time.monotonic() > deadline or \
                    any(r in ("ErrImagePull", "ImagePullBackOff", "CreateContainerConfigError") for r in waiting):
                scheduled = [c.message for c in got.status.conditions or [] if c.type == "PodScheduled" and c.message]
                why = ", ".join(waiting + scheduled) or got.status.phase
                raise CliError(f"the pod that reads the run's volume did not start ({why})", ERROR)
            time.sleep(1)
        yield Volume(cluster, run, name, kubectl)
    finally:
        try:
            cluster.core.delete_namespaced_pod(name, cluster.namespace, grace_period_seconds=0)
        except ApiException:
            pass
