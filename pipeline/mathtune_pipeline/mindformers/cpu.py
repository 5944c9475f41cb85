"""The CPU profile: what a MindFormers config needs to really train on x86-64 CPU.

Measured with MindSpore 2.9.0 + MindFormers 1.9.0 (REFERENCE §3):
- fp32 everywhere and no fused kernels: CPU has no RmsNorm kernel
  ("RmsNorm unregistered"), no flash attention, and the rotary embedding needs
  `use_rope_slice` (else a BatchMatMul broadcast error);
- MindFormers' training step checks overflow with Ascend-only ops, so the
  wrapper is `CpuTrainOneStepCell` (cpu_wrapper.py), which checks the grads
  with `isfinite`;
- data parallel only (parallel_mode 0): semi-auto parallel is Ascend/GPU only;
- two more, in the training worker (worker.py): MindFormers' `Barrier` op has
  no CPU kernel (cpu_barrier.py), and the Trainer must be preceded by
  `build_context`, or each rank trains alone with no gradient all-reduce
  (measured: the two ranks' LoRA weights drifted apart; with it they are
  bit-identical after every epoch);
- no dataset sink, no recompute, no parallel optimizer, one dataset worker
  (the profile targets two cores).
"""
import copy
from typing import Any, Dict

from ..errors import SpecError

CPU_WRAPPER = "CpuTrainOneStepCell"
FP32_KEYS = ("compute_dtype", "layernorm_compute_type", "softmax_compute_type", "rotary_dtype", "param_init_type")


def cpu_profile(config: Dict[str, Any]) -> Dict[str, Any]:
    cfg = copy.deepcopy(config)
    if cfg.get("parallel", {}).get("parallel_mode", 0) != 0:
        raise SpecError("spec.resources.parallel", "data parallel only on CPU (modelParallel 1, pipelineStage 1): "
                                                   "MindSpore's semi-auto parallel needs Ascend or GPU")
    context = cfg.setdefault("context", {})
    context.update({"device_target": "CPU", "mode": 0, "enable_graph_kernel": False})
    for key in ("graph_kernel_flags", "max_device_memory"):
        context.pop(key, None)
    model_config = cfg["model"]["model_config"]
    model_config.update({k: "float32" for k in FP32_KEYS})
    model_config.update({"use_flash_attention": False, "use_rope_slice": True, "fused_rms_norm": False})
    if "runner_wrapper" in cfg:
        cfg["runner_wrapper"]["type"] = CPU_WRAPPER
    parallel = cfg.setdefault("parallel", {})
    parallel.update({"full_batch": False, "enable_parallel_optimizer": False})
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
