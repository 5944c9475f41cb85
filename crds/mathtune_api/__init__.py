"""The MathFinetune API: the spec and status as typed models, the one place a
field is defined. The CRD, the chart's copy of it and docs/api.md are written
from here by crds/generate.py. Imports neither the operator nor the pipeline,
nor Kubernetes or MindSpore (.importlinter)."""
from .parse import SpecInvalid, parse_spec
from .spec import MathFinetuneSpec
from .status import MathFinetuneStatus
from .vocabulary import NPU_RESOURCE, STAGES

__all__ = ["MathFinetuneSpec", "MathFinetuneStatus", "NPU_RESOURCE", "STAGES", "SpecInvalid", "parse_spec"]
