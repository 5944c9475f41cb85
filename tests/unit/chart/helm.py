"""Render and lint the operator's chart with the real helm binary.

Shared by the chart's unit tests (no cluster) and its integration tests.
"""
import subprocess
from pathlib import Path
from typing import Dict, Iterable, List, Optional

import pytest
import yaml

from hack.cluster import local

CHART = local.REPO / "charts" / "mathtune-operator"
# helm's offline default Kubernetes version is older than the chart's
# kubeVersion floor; render for the version the local control plane runs.
KUBE_VERSION = local.VERSIONS["KUBE_VERSION"].lstrip("v")


def helm_bin() -> str:
    if not local.HELM.exists():
        pytest.fail(f"helm not found at {local.HELM}: run `make binaries`", pytrace=False)
    return str(local.HELM)


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([helm_bin(), *args], capture_output=True, text=True, check=check, timeout=120)


def _set_args(values: Optional[Dict[str, str]], values_files: Iterable[Path]) -> List[str]:
    out: List[str] = []
    for f in values_files:
        out += ["-f", str(f)]
    for key, value in (values or {}).items():
        out += ["--set", f"{key}={value}"]
    return out


def render_text(values: Optional[Dict[str, str]] = None, values_files: Iterable[Path] = (),
                release: str = "mt", namespace: str = "mathtune-system", show_only: Optional[str] = None,
                check: bool = True) -> subprocess.CompletedProcess:
    args = ["template", release, str(CHART), "--namespace", namespace, "--kube-version", KUBE_VERSION,
            "--include-crds", *_set_args(values, values_files)]
    if show_only:
        args += ["--show-only", show_only]
    return helm(*args, check=check)


def render(values: Optional[Dict[str, str]] = None, **kw) -> List[dict]:
    """Every object the chart makes for these values (CRD included)."""
    return [d for d in yaml.safe_load_all(render_text(values, **kw).stdout) if d]


def find(objs: List[dict], kind: str, name: Optional[str] = None) -> List[dict]:
    return [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def one(objs: List[dict], kind: str, name: Optional[str] = None) -> dict:
    found = find(objs, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {[o['metadata']['name'] for o in found]}"
    return found[0]
