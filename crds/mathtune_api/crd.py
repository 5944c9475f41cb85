"""The MathFinetune CustomResourceDefinition, written from the typed models."""
from typing import Any, Dict

from .schema import fill_defaults, model_schema
from .spec import MathFinetuneSpec
from .status import MathFinetuneStatus
from .vocabulary import rule

GROUP, VERSION, KIND, PLURAL = "mathtune.dev", "v1alpha1", "MathFinetune", "mathfinetunes"


def _column(name: str, path: str, typ: str, desc: str, priority: int = 0) -> Dict[str, Any]:
    return {"name": name, "type": typ, "jsonPath": path, "description": desc, "priority": priority}


def open_api_schema() -> Dict[str, Any]:
    return {
        "type": "object",
        "description": "MathFinetune is one LoRA fine-tuning run of an LLM for math.",
        "properties": {
            "apiVersion": {"type": "string", "description": "APIVersion of the object."},
            "kind": {"type": "string", "description": "Kind of the object."},
            "metadata": {"type": "object"},
            "spec": fill_defaults(model_schema(MathFinetuneSpec)),
            "status": model_schema(MathFinetuneStatus),
        },
        "required": ["spec"],
        "x-kubernetes-validations": [rule(
            "size(self.metadata.name) <= 40",
            "metadata.name must be at most 40 characters: it prefixes the run's Job, Service and claim names")],
    }


def crd() -> Dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}",
                     "labels": {"app.kubernetes.io/name": "mathtune", "app.kubernetes.io/part-of": "mathtune"}},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": PLURAL, "singular": "mathfinetune", "kind": KIND,
                      "listKind": f"{KIND}List", "shortNames": ["mft"], "categories": ["mathtune"]},
            "versions": [{
                "name": VERSION, "served": True, "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    _column("Stage", ".status.stage", "string", "Current stage"),
                    _column("Progress", ".status.progress.summary", "string", "Training progress"),
                    _column("Loss", ".status.progress.loss", "number", "Latest training loss"),
                    _column("F1", ".status.display.f1", "string", "SQuAD F1"),
                    _column("EM", ".status.display.em", "string", "SQuAD EM"),
                    _column("Math-Acc", ".status.display.mathAccuracy", "string", "Math accuracy"),
                    _column("Phase", ".status.phase", "string", "Run phase", 1),
                    _column("Age", ".metadata.creationTimestamp", "date", "Age"),
                ],
                "schema": {"openAPIV3Schema": open_api_schema()},
            }],
        },
    }
