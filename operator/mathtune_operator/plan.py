"""The stage plan: which stages a run has, in order. Pure."""
from typing import List

from mathtune_api import MathFinetuneSpec

ALL_STAGES = ("prepare", "tokenize", "train", "merge", "evaluate", "predict", "report", "export")

# Condition type per stage: "Trained=False, reason Running" reads well.
CONDITION_TYPE = {
    "prepare": "Prepared",
    "tokenize": "Tokenized",
    "train": "Trained",
    "merge": "Merged",
    "evaluate": "Evaluated",
    "predict": "Predicted",
    "report": "Reported",
    "export": "Exported",
}

# Stages that print `mathtune-progress` lines worth reading.
PROGRESS_STAGES = ("train", "evaluate", "predict")


def stages(spec: MathFinetuneSpec) -> List[str]:
    """Stages of a run with this (defaulted) spec.

    evaluate and predict are left out when disabled; report always runs (it
    also records the low-parameter ratio and artifacts); export runs when the
    spec has an export block (the CRD gives it no default: absent, no export).
    """
    out = []
    for stage in ALL_STAGES:
        if stage == "evaluate" and not spec.evaluation.enabled:
            continue
        if stage == "predict" and not spec.prediction.enabled:
            continue
        if stage == "export" and spec.export is None:
            continue
        out.append(stage)
    return out


def is_multi_node(spec: MathFinetuneSpec, stage: str) -> bool:
    return stage == "train" and spec.resources.nodes > 1


def npus_for(spec: MathFinetuneSpec, stage: str) -> int:
    """NPUs a stage pod asks for (0 = none).

    train uses every NPU of its node; evaluate and predict run the merged
    (complete) checkpoint on one card, as the pipeline's inference config
    does (render.inference_config: use_parallel off), so they ask for one
    (tests/unit/contract/test_inference_npus.py holds the two together). Data
    stages, merge (checkpoint transformation runs on CPU) and report need none.
    The cpu profile asks for NPUs only for train and only when
    resources.requestNpusOnCpu is set (a cluster whose nodes emulate NPUs, as
    the local demo's node does): its workers then follow the devices
    allocated, as on Ascend.
    """
    per_node = spec.resources.npus_per_node
    if spec.profile != "ascend":
        return per_node if stage == "train" and spec.resources.request_npus_on_cpu else 0
    if stage == "train":
        return per_node
    if stage in ("evaluate", "predict"):
        return 1
    return 0
