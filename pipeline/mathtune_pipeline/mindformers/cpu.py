"""The CPU profile: what a MindFormers config needs to really train on x86-64 CPU.

The rendered Ascend config is kept wherever MindSpore 2.9's CPU backend runs
it: the same context (mode, graph-kernel settings, `max_device_memory`, which
MindSpore ignores on CPU with a warning), the same parallel mode, full_batch
and parallel-optimizer settings, float16 where the family computes in it.
What is changed, each refusal shown by a test in
tests/unit/pipeline/mindformers/test_cpu_refusals.py (docs/cpu-vs-ascend.md):
- `device_target: CPU`;
- bfloat16 becomes float32 (CPU kernels such as Gather and Reshape have no
  bfloat16 variant); float16 stays;
- no fused kernels: fused RmsNorm and FlashAttentionScore have no CPU kernel,
  and the rotary embedding needs `use_rope_slice` (else a BatchMatMul
  broadcast error);
- MindFormers' training step checks overflow with Ascend-only ops, so the
  wrapper is `CpuTrainOneStepCell` (cpu_wrapper.py), which checks the grads
  with `isfinite`;
- data parallel only (parallel_mode 0): semi-auto parallel fails to compile
  on CPU ("Invalid backend: CPU");
- the parallel optimizer, where the Ascend config has it in data-parallel
  mode, is checked against the optimizer class as MindSpore checks it on
  Ascend, then dropped: MindSpore refuses it on CPU;
- no dataset sink: MindSpore's Model.train does not sink on CPU and steps
  through whole epochs instead, so MindFormers' sink-loop epoch count would
  train epochs x steps / sink_size epochs;
- no recompute, one dataset worker (the profile targets two cores);
- two more, in the training worker (worker.py): MindFormers' `Barrier` op has
  no CPU kernel (cpu_barrier.py), and the Trainer must be preceded by
  `build_context`, or each rank trains alone with no gradient all-reduce
  (measured: the two ranks' LoRA weights drifted apart; with it they are
  bit-identical after every epoch).
"""
import copy
from typing import Any, Dict

from ..errors import SpecError

CPU_WRAPPER = "CpuTrainOneStepCell"
DTYPE_KEYS = ("compute_dtype", "layernorm_compute_type", "softmax_compute_type", "rotary_dtype", "param_init_type")


def optimizer_supports_parallel(optimizer: Dict[str, Any]) -> bool:
    """Whether the optimizer class MindFormers builds for `optimizer` declares MindSpore's
    parallel optimizer support (`_support_parallel_optimizer`, checked by
    Optimizer._use_parallel_optimizer on Ascend in data-parallel mode). Its registered
    `AdamW` is a factory returning BasicAdamW or FusedAdamW."""
    from mindformers.tools.register import MindFormerModuleType, MindFormerRegister

    import mindformers.core.optim  # noqa: F401 - registers the optimizers

    cls = MindFormerRegister.get_cls(MindFormerModuleType.OPTIMIZER, optimizer["type"])
    if hasattr(cls, "get_actual_adamw_cls"):
        cls = cls.get_actual_adamw_cls(optimizer.get("use_fused", False))
    return bool(getattr(cls, "_support_parallel_optimizer", False))


def _parallel_optimizer(cfg: Dict[str, Any]) -> None:
    parallel = cfg["parallel"]
    if not (cfg.get("use_parallel") and parallel.get("enable_parallel_optimizer")):
        return
    # Data-parallel mode (semi-auto is refused above). What Ascend does with this
    # config, decided here, since MindSpore refuses the flag on CPU before it
    # looks at the optimizer: an optimizer that would crash there crashes here.
    optimizer = cfg.get("optimizer") or {}
    if not optimizer_supports_parallel(optimizer):
        raise SpecError("spec.training.optimizer.type",
                        f"an optimizer that supports MindSpore's parallel optimizer in data-parallel mode "
                        f"({optimizer.get('type')} does not: on Ascend, building it raises \"For 'Optimizer', "
                        f"parallel optimizer only support optimizer 'Lamb' and 'AdamWeightDecay' and "
                        f"'AdaFactor'\")")
    parallel["enable_parallel_optimizer"] = False


def cpu_profile(config: Dict[str, Any]) -> Dict[str, Any]:
    cfg = copy.deepcopy(config)
    if cfg.get("parallel", {}).get("parallel_mode", 0) != 0:
        raise SpecError("spec.resources.parallel", "data parallel only on CPU (modelParallel 1, pipelineStage 1): "
                                                   "MindSpore's semi-auto parallel needs Ascend or GPU")
    cfg.setdefault("context", {})["device_target"] = "CPU"
    model_config = cfg["model"]["model_config"]
    model_config.update({k: "float32" for k in DTYPE_KEYS if model_config.get(k) == "bfloat16"})
    model_config.update({"use_flash_attention": False, "use_rope_slice": True, "fused_rms_norm": False})
    if "runner_wrapper" in cfg:
        cfg["runner_wrapper"]["type"] = CPU_WRAPPER
    cfg.setdefault("parallel", {})
    _parallel_optimizer(cfg)
    cfg["recompute_config"] = {"recompute": False}
    if "runner_config" in cfg:
        cfg["runner_config"]["sink_mode"] = False
    for key in ("train_dataset", "eval_dataset"):
        if key in cfg:
            cfg[key]["num_parallel_workers"] = 1
    # The *_task entries point at the same dataset dicts (YAML anchors in the seeds' file).
    for key in ("train_dataset", "eval_dataset"):
        if f"{key}_task" in cfg and key in cfg:
            cfg[f"{key}_task"]["dataset_config"] = cfg[key]
    return cfg
