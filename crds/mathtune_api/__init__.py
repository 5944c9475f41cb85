"""The MathFinetune API: the spec and status as typed models, the one place a
field is defined. The CRD, the chart's copy of it and docs/api.md are written
from here by crds/generate.py. Imports neither the operator nor the pipeline,
nor Kubernetes or MindSpore (.importlinter).

The status models are imported from `mathtune_api.status` by what needs them
(the CRD, the reference): a stage reads only the spec, and building models
costs start-up time in every stage process."""
from .parse import SpecInvalid, parse_spec
from .spec import MathFinetuneSpec
from .vocabulary import NPU_RESOURCE, STAGES

__all__ = ["MathFinetuneSpec", "NPU_RESOURCE", "STAGES", "SpecInvalid", "parse_spec"]
