"""The run spec as the stages see it: a MathFinetune `spec` with defaults applied.

On the cluster the API server has already applied the CRD's defaults; locally
(`run-local`) nobody has, so the same defaults live here too. A unit test
keeps these equal to the CRD's (tests/unit/pipeline/test_spec_defaults.py).
"""
import copy
import json
from pathlib import Path
from typing import Any, Dict, Tuple, Union

import yaml

from .errors import SpecError

DEFAULTS: Dict[str, Any] = {
    "profile": "ascend",
    "model": {
        "family": "llama3-8b",
        "checkpoint": "",
        "tokenizer": {"uri": "", "format": "hf-json"},
        "tiny": {"numLayers": 2, "hiddenSize": 64, "numHeads": 4, "vocabSize": 512},
    },
    "data": {
        "source": {"uri": "", "format": "contest-jsonl", "sha256": ""},
        "maxBadRows": -1,
        "dedupe": True,
        "classify": {"extraRules": []},
        "sample": {"mode": "none", "seed": 42, "quotas": {}, "fraction": 1.0},
        "chainOfThought": {"enabled": False, "decimals": 2, "types": []},
        "template": {"name": "alpaca", "systemPrompt": ""},
        "seqLength": 512,
        "seqLengthPercentile": 100,
        "shards": 1,
        "batching": {"mode": "bucketed", "multiple": 8},
    },
    "lora": {"rank": 8, "alpha": 16, "dropout": 0.05, "targetModules": ["wq", "wv"]},
    "training": {
        "epochs": 1,
        "batchSize": 32,
        "sinkMode": True,
        "sinkSize": 2,
        "seed": 0,
        "optimizer": {"type": "FP32StateAdamWeightDecay", "beta1": 0.9, "beta2": 0.95,
                      "eps": 1.0e-8, "weightDecay": 0.0},
        "lrSchedule": {"type": "CosineWithWarmUpLR", "learningRate": 1.0e-4,
                       "lrEnd": 0.0, "warmupRatio": 0.03},
        "checkpoint": {"everyEpoch": True, "saveSteps": 0, "keepMax": 5},
        "maxDeviceMemory": "58GB",
    },
    "resources": {
        "npusPerNode": 4,
        "nodes": 1,
        "requestNpusOnCpu": False,
        "parallel": {"dataParallel": 4, "modelParallel": 1, "pipelineStage": 1, "microBatchNum": 1},
    },
    "evaluation": {
        "enabled": True,
        "dataset": {"uri": "", "format": "squad-json"},
        "maxSamples": 0,
        "maxNewTokens": 20,
        "answerRule": "first",
        "epochs": [],
        "gate": {"mode": "relative", "f1": 0.9, "em": 0.9},
        "baseScores": {},
    },
    "prediction": {
        "enabled": True,
        "dataset": {"uri": "", "format": "contest-jsonl"},
        "maxSamples": 0,
        "tolerance": 0.01,
        "maxNewTokens": 128,
    },
    "storage": {"pvcName": "", "size": "200Gi", "storageClassName": "", "dataPath": "/data"},
    "images": {"pipeline": "mathtune/pipeline-ascend:0.1.0", "pullPolicy": "IfNotPresent"},
    "scheduling": {"nodeSelector": {}, "tolerations": [], "priorityClassName": "",
                   "schedulerName": "", "queue": ""},
    "runPolicy": {"suspend": False, "backoffLimit": 2, "activeDeadlineSeconds": 0,
                  "ttlSecondsAfterFinished": 0},
}

# Maps whose keys are the user's (not schema fields): never merged key by key.
_OPAQUE_MAPS = {("data", "sample", "quotas"), ("scheduling", "nodeSelector"),
                ("evaluation", "baseScores")}


def _merge(defaults: Any, given: Any, path: Tuple[str, ...]) -> Any:
    if isinstance(defaults, dict) and isinstance(given, dict) and path not in _OPAQUE_MAPS:
        out = copy.deepcopy(defaults)
        for key, value in given.items():
            out[key] = _merge(defaults.get(key), value, path + (key,)) if key in defaults else copy.deepcopy(value)
        return out
    if given is None:
        return copy.deepcopy(defaults)
    return copy.deepcopy(given)


def with_defaults(spec: Dict[str, Any]) -> Dict[str, Any]:
    if not isinstance(spec, dict):
        raise SpecError("spec", "a mapping")
    return _merge(DEFAULTS, spec, ())


def load_spec(path: Union[str, Path]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Read a run file: a whole MathFinetune resource or a bare spec, YAML or JSON.

    Returns (spec with defaults, metadata). Metadata has at least `name`.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError("--spec", f"a readable run file ({exc})") from exc
    try:
        doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise SpecError("--spec", f"valid YAML or JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise SpecError("--spec", "a mapping at the top level")
    if "spec" in doc:
        metadata = dict(doc.get("metadata") or {})
        spec = doc["spec"]
    else:
        metadata, spec = {}, doc
    metadata.setdefault("name", path.stem)
    return with_defaults(spec), metadata


def get(spec: Dict[str, Any], dotted: str) -> Any:
    """spec value at a dotted path, e.g. get(spec, 'lora.rank')."""
    node: Any = spec
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise SpecError(f"spec.{dotted}", "a value (missing)")
        node = node[part]
    return node
