"""The CustomResourceDefinitions (MathFinetune, MathFinetuneSweep), written from the typed models."""
from typing import Any, Dict, List, Type

from pydantic import BaseModel

from .schema import fill_defaults, model_schema
from .spec import MathFinetuneSpec
from .status import MathFinetuneStatus
from .sweep import MathFinetuneSweepSpec
from .sweep_status import MathFinetuneSweepStatus
from .vocabulary import rule

GROUP, VERSION, KIND, PLURAL = "mathtune.dev", "v1alpha1", "MathFinetune", "mathfinetunes"
SWEEP_KIND, SWEEP_PLURAL = "MathFinetuneSweep", "mathfinetunesweeps"
# A trial is <sweep>-<number> (up to 3 digits), and a run's name is at most 40.
SWEEP_NAME_MAX = 36


def _column(name: str, path: str, typ: str, desc: str, priority: int = 0) -> Dict[str, Any]:
    return {"name": name, "type": typ, "jsonPath": path, "description": desc, "priority": priority}


def _schema(description: str, spec: Type[BaseModel], status: Type[BaseModel], name_max: int,
            name_why: str) -> Dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "properties": {
            "apiVersion": {"type": "string", "description": "APIVersion of the object."},
            "kind": {"type": "string", "description": "Kind of the object."},
            "metadata": {"type": "object"},
            "spec": fill_defaults(model_schema(spec)),
            "status": model_schema(status),
        },
        "required": ["spec"],
        "x-kubernetes-validations": [rule(f"size(self.metadata.name) <= {name_max}",
                                          f"metadata.name must be at most {name_max} characters: {name_why}")],
    }


def open_api_schema() -> Dict[str, Any]:
    return _schema("MathFinetune is one LoRA fine-tuning run of an LLM for math.", MathFinetuneSpec,
                   MathFinetuneStatus, 40, "it prefixes the run's Job, Service and claim names")


def sweep_open_api_schema() -> Dict[str, Any]:
    return _schema("MathFinetuneSweep searches MathFinetune recipes for the best math accuracy that keeps the "
                   "original ability.", MathFinetuneSweepSpec, MathFinetuneSweepStatus, SWEEP_NAME_MAX,
                   "its trials are named <sweep>-<number>, and a MathFinetune's name is at most 40")


def _crd(kind: str, plural: str, short: List[str], columns: List[Dict[str, Any]],
         schema: Dict[str, Any]) -> Dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}",
                     "labels": {"app.kubernetes.io/name": "mathtune", "app.kubernetes.io/part-of": "mathtune"}},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": plural, "singular": kind.lower(), "kind": kind,
                      "listKind": f"{kind}List", "shortNames": short, "categories": ["mathtune"]},
            "versions": [{
                "name": VERSION, "served": True, "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": columns,
                "schema": {"openAPIV3Schema": schema},
            }],
        },
    }


def crd() -> Dict[str, Any]:
    return _crd(KIND, PLURAL, ["mft"], [
        _column("Stage", ".status.stage", "string", "Current stage"),
        _column("Progress", ".status.progress.summary", "string", "Training progress"),
        _column("Loss", ".status.progress.loss", "number", "Latest training loss"),
        _column("F1", ".status.display.f1", "string", "SQuAD F1"),
        _column("EM", ".status.display.em", "string", "SQuAD EM"),
        _column("Math-Acc", ".status.display.mathAccuracy", "string", "Math accuracy"),
        _column("Phase", ".status.phase", "string", "Run phase", 1),
        _column("Age", ".metadata.creationTimestamp", "date", "Age"),
    ], open_api_schema())


def sweep_crd() -> Dict[str, Any]:
    return _crd(SWEEP_KIND, SWEEP_PLURAL, ["mfts"], [
        _column("Phase", ".status.phase", "string", "Sweep phase"),
        _column("Trials", ".status.display.trials", "string", "Trials done / maxTrials"),
        _column("Running", ".status.counts.running", "integer", "Trials running"),
        _column("Best", ".status.display.best", "string", "The best trial that passed the gate"),
        _column("Objective", ".status.display.objective", "string", "Its objective"),
        _column("Failed", ".status.counts.failed", "integer", "Trials whose run failed", 1),
        _column("Infeasible", ".status.counts.infeasible", "integer", "Trials that missed the gate", 1),
        _column("Pruned", ".status.counts.pruned", "integer", "Trials early stopping suspended", 1),
        _column("Age", ".metadata.creationTimestamp", "date", "Age"),
    ], sweep_open_api_schema())
