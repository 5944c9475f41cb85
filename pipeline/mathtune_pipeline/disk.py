"""How much of the work volume a run needs, and a check that it is there.

What a run leaves on the volume (<dataPath>/runs/<run>/), with P the base
model's parameters, b the bytes per parameter of its checkpoint (2 for
bfloat16/float16, the families' param_init_type; 4 for float32), T the LoRA
parameters, K = min(epochs, training.checkpoint.keepMax) the epochs whose
checkpoints are kept:

- the base checkpoint: P·b (when fetched from a URI it is stored once);
- tokenize: rows · (seqLength + 1) · 4 bytes · 2 columns (input_ids,
  labels; bucketed rows are shorter), prepare: about 1 KiB a row;
- train: K saves, each dataParallel model copies split over the model- and
  pipeline-parallel ranks, so dataParallel · P·b, plus every rank's LoRA
  weights and their two Adam moments in float32 (3 · T · 4 per rank);
- merge: per kept epoch the merged model (P·b) and the adapter (T · 4); with
  model or pipeline parallelism one reassembled checkpoint (P·b) exists while
  an epoch is merged.

Seed 000 (Llama3-8B, P = 8.03e9 bf16, 5 epochs, dp 1 mp 4): 16 GB base,
80 GB of train saves, 80 GB merged, 16 GB transient: about 190 GB, close to
the default 200Gi claim; with dataParallel 4 the train saves alone are 320 GB.
"""
import shutil
from pathlib import Path
from typing import Dict, Optional, Union

from mathtune_api import MathFinetuneSpec as Spec

from .errors import SpecError

GIB = 2**30
PREPARED_BYTES_PER_ROW = 1024


def work_volume_bytes(*, params: int, bytes_per_param: int, trainable: int, epochs: int, keep_max: int,
                      data_parallel: int, model_parallel: int, pipeline_stage: int, ranks: int,
                      rows: int, seq_length: int) -> Dict[str, int]:
    """The work volume a run needs, per stage and in total (bytes)."""
    model = params * bytes_per_param
    kept = min(epochs, keep_max)
    lora_state = 3 * trainable * 4
    parts = {
        "base": model,
        "prepare": rows * PREPARED_BYTES_PER_ROW,
        "tokenize": rows * (seq_length + 1) * 4 * 2,
        "train": kept * (data_parallel * model + ranks * lora_state),
        "merge": kept * (model + trainable * 4) + (model if model_parallel * pipeline_stage > 1 else 0),
    }
    parts["total"] = sum(parts.values())
    return parts


def for_spec(spec: Spec, rows: int) -> Dict[str, int]:
    """work_volume_bytes for a defaulted spec and its row count."""
    from .mindformers import counts, families

    model_config = families.family(spec)["model_config"]
    parallel = spec.resources.parallel
    pattern = "|".join(f".*{m}" for m in spec.lora.target_modules)
    width = 4 if spec.profile == "cpu" or model_config.get("param_init_type") == "float32" else 2
    seq = spec.data.seq_length
    return work_volume_bytes(
        params=counts.base_params(model_config), bytes_per_param=width,
        trainable=counts.lora_params(model_config, {"lora_rank": spec.lora.rank, "target_modules": pattern}),
        epochs=spec.training.epochs, keep_max=spec.training.checkpoint.keep_max,
        data_parallel=parallel.data_parallel, model_parallel=parallel.model_parallel,
        pipeline_stage=parallel.pipeline_stage, ranks=spec.resources.devices,
        rows=rows, seq_length=seq if isinstance(seq, int) else 4096)


def outlook(spec: Spec, rows: int, path: Union[str, Path]) -> Dict[str, int]:
    """What the stages after prepare will write (tokenize, train, merge) and
    what the volume holding `path` has free now: the operator warns in the
    run's status when the first exceeds the second, hours before a save fails."""
    parts = for_spec(spec, rows)
    path = Path(path)
    probe = path if path.exists() else next(p for p in path.parents if p.exists())
    return {"neededBytes": parts["tokenize"] + parts["train"] + parts["merge"],
            "freeBytes": shutil.disk_usage(probe).free}


def free_bytes(path: Union[str, Path]) -> int:
    """Free bytes on the volume holding `path` (or its nearest existing parent)."""
    path = Path(path)
    probe = path if path.exists() else next(p for p in path.parents if p.exists())
    return shutil.disk_usage(probe).free


def shortfall(path: Union[str, Path], needed: int, what: str) -> Optional[str]:
    """What is missing when the volume holding `path` has less than `needed` bytes free, else None."""
    path = Path(path)
    free = free_bytes(path)
    if free >= needed:
        return None
    return f"room for {what}: {needed / GIB:.2f} GiB needed under {path}, {free / GIB:.2f} GiB free on the work volume"


def require_room(path: Union[str, Path], needed: int, what: str) -> None:
    """Fail before writing when the volume is short: a SpecError (exit 2, not
    retried: a retry finds the same disk)."""
    missing = shortfall(path, needed, what)
    if missing:
        raise SpecError("spec.storage.size", missing)
