"""The base model's checkpoint: the spec's, or for `tiny-llama` one made here, seeded.

The spec's may be a uri, a relative path, safetensors or Hugging Face weights:
weights.py brings it to a local MindSpore .ckpt in MindFormers' naming.

The CPU profile has no pretrained weights. Its base model is MindFormers'
LlamaForCausalLM with random weights drawn from `training.seed`, saved once
under `<run-dir>/base/` so that train starts from it and evaluate scores the
very same base model.
"""
import os
from pathlib import Path
from typing import Any, Dict

from mathtune_api import MathFinetuneSpec as Spec
from mathtune_api.spec_training import Parallel

from ..artifacts import sha256_json
from ..errors import SpecError
from . import checkpoint_io, cpu, dialect, families, model, render, weights

TINY = "tiny-llama"


def model_only_config(spec: Spec) -> Dict[str, Any]:
    """The MindFormers config of the bare model (no LoRA), adapted to this machine's profile."""
    cfg = render.finetune_config(_one_card(spec), dataset_dir="", load_checkpoint="", save_checkpoint_steps=1)
    cfg = dialect.adapt(cfg)
    if spec.profile == "cpu":
        cfg = cpu.cpu_profile(cfg)
    cfg["model"]["model_config"].pop("pet_config", None)
    return cfg


def _one_card(spec: Spec) -> Spec:
    one = spec.resources.model_copy(update={"npus_per_node": 1, "nodes": 1, "parallel": Parallel(
        data_parallel=1, model_parallel=1, pipeline_stage=1, micro_batch_num=1)})
    return spec.model_copy(update={"resources": one})


def checkpoint_path(spec: Spec, run_dir: os.PathLike) -> Path:
    """The local .ckpt of the base weights (fetched and converted first when needed)."""
    if spec.model.checkpoint:
        return weights.mindspore_checkpoint(spec, run_dir)
    if spec.model.family != TINY:
        raise SpecError("spec.model.checkpoint", f"the base model's checkpoint (only {TINY} is made with "
                                                 f"random weights)")
    mc = families.family(spec)["model_config"]
    key = sha256_json({"model": mc, "seed": spec.training.seed})[:12]
    return Path(run_dir) / "base" / f"{TINY}-{key}.ckpt"


def ensure(spec: Spec, run_dir: os.PathLike) -> Path:
    """The base checkpoint, made first when it is a seeded tiny model not yet saved."""
    path = checkpoint_path(spec, run_dir)
    if path.exists():
        checkpoint_io.check(path)  # a truncated base fails here, not in every msrun worker
        return path
    if spec.model.checkpoint:
        raise SpecError("spec.model.checkpoint", f"an existing checkpoint file ({path} not found)")
    import mindspore as ms

    model.set_cpu_context(spec.training.seed)
    network = model.build_network(model.load_config(model_only_config(spec)))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")  # save_checkpoint wants a .ckpt suffix
    ms.save_checkpoint(network, str(tmp))
    tmp.replace(path)
    return path
