"""What a stage's pod gets beyond what the operator sets: the run's
spec.podTemplates merged for one stage, over per-stage resource defaults.
Pure: spec in, dicts out. docs/pod-template.md says the same for users.
"""
from typing import Dict, List, Set

from mathtune_api import MathFinetuneSpec

from . import plan
from .types import Obj

GI = 1024 ** 3
# Parameters of the Ascend families (their Hugging Face configs), held on the
# host as fp16/bf16: two bytes each.
MODEL_PARAMS = {"llama3-8b": 8.03e9, "internlm-7b": 7.32e9, "llama-7b": 6.74e9}
DEFAULT_MODEL_PARAMS = 8.03e9


def _gib(value: float) -> str:
    return f"{max(1, round(value / GI))}Gi"


def default_requests(spec: MathFinetuneSpec, stage: str) -> Dict[str, str]:
    """cpu and memory a stage's pod reserves unless a template says otherwise.

    Requests only, no limits: a training pod killed at a memory limit loses
    everything since its last checkpoint, and a Burstable pod that asked for
    what it needs is the last to be evicted. Ascend sizes follow the model:
    every training rank and the evaluate/predict process read the whole base
    checkpoint on the host before placing it on the NPUs, and merge (MindSpore's
    checkpoint transformation) holds the complete model once. The cpu profile's
    tiny model needs little, and its pods share a small node.
    """
    npus = max(1, plan.npus_for(spec, stage))
    workers = spec.resources.npus_per_node
    if spec.profile != "ascend":
        cpu_profile = {"prepare": ("250m", "512Mi"), "tokenize": ("250m", "512Mi"),
                       "train": (f"{250 * workers}m", f"{workers}Gi"), "merge": ("250m", "1Gi"),
                       "evaluate": ("250m", "2Gi"), "predict": ("250m", "2Gi"), "report": ("100m", "256Mi"),
                       "export": ("250m", "512Mi")}
        cpu, memory = cpu_profile[stage]
        return {"cpu": cpu, "memory": memory}
    model = 2 * MODEL_PARAMS.get(spec.model.family, DEFAULT_MODEL_PARAMS)
    ascend = {"prepare": ("4", "16Gi"), "tokenize": ("8", "16Gi"),
              # one host process per NPU, each with its dataset workers
              "train": (str(4 * npus), _gib(npus * (model + 4 * GI))),
              "merge": ("4", _gib(model + 4 * GI)),
              "evaluate": ("8", _gib(model + 8 * GI)), "predict": ("8", _gib(model + 8 * GI)),
              "report": ("1", "2Gi"),
              # streams the merged checkpoint a piece at a time (export/safetensors_out.py)
              "export": ("2", "4Gi")}
    cpu, memory = ascend[stage]
    return {"cpu": cpu, "memory": memory}


def templates_for(spec: MathFinetuneSpec, stage: str) -> List[Obj]:
    """The run's templates that apply to this stage, in order."""
    return [t for t in spec.pod_templates or [] if not t.get("stages") or stage in t["stages"]]


def _by_name(items: List[Obj], extra: List[Obj]) -> List[Obj]:
    """items, then extra; an entry of extra replaces an earlier one of the same name, in place."""
    out = {item["name"]: item for item in items}
    for item in extra:
        out[item["name"]] = item
    return list(out.values())


def merged(spec: MathFinetuneSpec, stage: str) -> Obj:
    """Every template of this stage folded into one (later over earlier)."""
    out: Obj = {"env": [], "envFrom": [], "serviceAccountName": "", "imagePullSecrets": [],
                "requests": default_requests(spec, stage), "limits": {}, "labels": {}, "annotations": {},
                "nodeSelector": {}, "tolerations": [], "affinity": {}, "volumes": [], "volumeMounts": []}
    requested: Set[str] = set()  # resource names a template asked for: theirs, kept as given
    for template in templates_for(spec, stage):
        out["env"] = _by_name(out["env"], template.get("env") or [])
        out["imagePullSecrets"] = _by_name(out["imagePullSecrets"], template.get("imagePullSecrets") or [])
        out["volumes"] = _by_name(out["volumes"], template.get("volumes") or [])
        for key in ("envFrom", "tolerations", "volumeMounts"):
            out[key] = out[key] + list(template.get(key) or [])
        for key in ("labels", "annotations", "nodeSelector", "affinity"):
            out[key] = {**out[key], **(template.get(key) or {})}
        resources = template.get("resources") or {}
        for key in ("requests", "limits"):
            out[key] = {**out[key], **{k: str(v) for k, v in (resources.get(key) or {}).items()}}
        requested.update(resources.get("requests") or {})
        if template.get("serviceAccountName"):
            out["serviceAccountName"] = template["serviceAccountName"]
    # A limit below the default request would make the pod invalid; the
    # user's limit is what they meant, so the request follows it down.
    for key, limit in out["limits"].items():
        if key in out["requests"] and key not in requested and _quantity(limit) < _quantity(out["requests"][key]):
            out["requests"][key] = limit
    return out


_SUFFIX = {"Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40, "Pi": 2 ** 50, "Ei": 2 ** 60,
           "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}


def _quantity(text: str) -> float:
    """A Kubernetes quantity's value (what the CRD's pattern admits)."""
    text = str(text).strip()
    for suffix in sorted(_SUFFIX, key=len, reverse=True):
        if text.endswith(suffix):
            return float(text[:-len(suffix)]) * _SUFFIX[suffix]
    return float(text)
