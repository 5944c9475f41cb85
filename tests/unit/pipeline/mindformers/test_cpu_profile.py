"""The CPU profile changes only what CPU cannot run (docs/cpu-vs-ascend.md, test_cpu_refusals.py).

If an override comes back (the context, the parallel or optimizer settings,
float16, ...), these fail: the CPU runs would stop exercising the Ascend path.
"""
from pathlib import Path

import pytest
import yaml

from mathtune_pipeline.errors import SpecError
from mathtune_pipeline.mindformers import cpu, dialect, render
from tests.specs import typed

EXAMPLES = Path(__file__).resolve().parents[4] / "examples"

# Every key path the CPU profile may change, each a row of docs/cpu-vs-ascend.md.
ALLOWED = {
    "context.device_target",                          # device
    "model.model_config.compute_dtype",               # bfloat16 only
    "model.model_config.param_init_type",             # bfloat16 only
    "model.model_config.use_flash_attention",         # fused kernels
    "model.model_config.use_rope_slice",
    "model.model_config.fused_rms_norm",
    "runner_wrapper.type",                            # training step wrapper
    "runner_config.sink_mode",                        # dataset sink
    "recompute_config",                               # recompute, dataset workers
    "train_dataset.num_parallel_workers",
    "eval_dataset.num_parallel_workers",
    "train_dataset_task.dataset_config.num_parallel_workers",
    "eval_dataset_task.dataset_config.num_parallel_workers",
}


def _changed(a, b, path=""):
    if isinstance(a, dict) and isinstance(b, dict):
        out = set()
        for key in set(a) | set(b):
            sub = f"{path}.{key}" if path else key
            if key not in a or key not in b:
                out.add(sub)
            else:
                out |= _changed(a[key], b[key], sub)
        return out
    return set() if a == b else {path}


def _not_allowed(changed):
    return sorted(c for c in changed if not any(c == a or c.startswith(a + ".") for a in ALLOWED))


def _ascend_and_cpu(spec):
    ascend = dialect.adapt(render.finetune_config(spec, dataset_dir="d", load_checkpoint="c",
                                                  save_checkpoint_steps=1, seq_length=128))
    return ascend, cpu.cpu_profile(ascend)


def _cpu_example(**training):
    spec = yaml.safe_load((EXAMPLES / "run-cpu.yaml").read_text())["spec"]
    spec["training"].update(training)
    return typed(spec)


def test_the_cpu_example_differs_from_its_ascend_config_only_where_cpu_cannot():
    ascend, on_cpu = _ascend_and_cpu(_cpu_example(sinkMode=True))
    assert not _not_allowed(_changed(ascend, on_cpu))
    # The same context, parallel mode and optimizer: only the device differs.
    assert {k: v for k, v in on_cpu["context"].items() if k != "device_target"} == \
        {k: v for k, v in ascend["context"].items() if k != "device_target"}
    assert "max_device_memory" in on_cpu["context"] and "graph_kernel_flags" in on_cpu["context"]
    assert on_cpu["parallel"] == ascend["parallel"] and on_cpu["optimizer"] == ascend["optimizer"]
    assert on_cpu["use_parallel"] is True and on_cpu["parallel"]["parallel_mode"] == 0
    # The refused settings, changed (test_cpu_refusals.py says why).
    mc = on_cpu["model"]["model_config"]
    assert mc["compute_dtype"] == mc["param_init_type"] == "float32"
    assert (mc["use_flash_attention"], mc["use_rope_slice"], mc["fused_rms_norm"]) == (False, True, False)
    assert ascend["runner_config"]["sink_mode"] is True and on_cpu["runner_config"]["sink_mode"] is False


@pytest.mark.parametrize("family", ["llama-7b", "internlm-7b"])
def test_float16_families_keep_float16_on_cpu(family):
    spec = typed({"profile": "cpu", "model": {"family": family}, "data": {"seqLength": 128},
                          "resources": {"npusPerNode": 2, "nodes": 1, "parallel": {
                              "dataParallel": 2, "modelParallel": 1, "pipelineStage": 1, "microBatchNum": 1}}})
    ascend, on_cpu = _ascend_and_cpu(spec)
    mc = on_cpu["model"]["model_config"]
    assert mc["compute_dtype"] == mc["param_init_type"] == "float16"
    assert on_cpu["runner_wrapper"]["scale_sense"] == ascend["runner_wrapper"]["scale_sense"]
    assert on_cpu["runner_wrapper"]["scale_sense"]["type"] == "DynamicLossScaleUpdateCell"
    assert not _not_allowed(_changed(ascend, on_cpu))


def _with_parallel_optimizer(optimizer_type):
    _, on_cpu = _ascend_and_cpu(_cpu_example())
    config = dict(on_cpu, optimizer={"type": optimizer_type}, parallel=dict(on_cpu["parallel"],
                                                                           enable_parallel_optimizer=True))
    return config


@pytest.mark.mindspore
def test_a_data_parallel_optimizer_that_would_crash_on_ascend_is_refused_on_cpu():
    """MindSpore refuses the parallel optimizer on CPU before looking at the class
    (test_cpu_refusals.py), so the profile applies Ascend's rule itself, then drops the flag."""
    with pytest.raises(SpecError) as err:
        cpu.cpu_profile(_with_parallel_optimizer("AdamW"))   # MindFormers 1.9's AdamW: unsupported
    assert err.value.field == "spec.training.optimizer.type"
    on_cpu = cpu.cpu_profile(_with_parallel_optimizer("Lamb"))  # supported on Ascend: runs on CPU without it
    assert on_cpu["parallel"]["enable_parallel_optimizer"] is False
