"""What MindSpore 2.9 / MindFormers 1.9 refuse on CPU: the reasons of docs/cpu-vs-ascend.md.

Each test runs the Ascend setting the CPU profile changes, on CPU, with the
smallest model or network that reaches it, and asserts MindSpore's refusal.
If a newer MindSpore runs one of them, its test fails: the CPU profile
should then take the Ascend path there (mindformers/cpu.py) and the table
row go. Tests that set MindSpore's process-wide parallel context run in a
subprocess of their own.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mathtune_pipeline.mindformers import cpu, dialect, inference, model, render
from tests.specs import typed

pytestmark = pytest.mark.mindspore

SEQ = 32
TINY = {
    "profile": "cpu",
    "model": {"family": "tiny-llama", "tiny": {"numLayers": 1, "hiddenSize": 32, "numHeads": 4, "vocabSize": 128}},
    "data": {"seqLength": SEQ},
    "lora": {"rank": 4, "alpha": 8, "dropout": 0.0, "targetModules": ["wq", "wv"]},
    "training": {"batchSize": 2},
    "resources": {"npusPerNode": 1, "nodes": 1,
                  "parallel": {"dataParallel": 1, "modelParallel": 1, "pipelineStage": 1, "microBatchNum": 1}},
}


def tiny_config(**model_config):
    """The CPU profile's finetune config of a one-layer tiny Llama, with `model_config` put back."""
    spec = typed(TINY)
    cfg = cpu.cpu_profile(dialect.adapt(render.finetune_config(spec, dataset_dir="", load_checkpoint="",
                                                               save_checkpoint_steps=1)))
    cfg["model"]["model_config"].update(model_config)
    return cfg


def train_loss(cfg):
    """One training forward of MindFormers' Llama (LoRA applied) built from `cfg`, on CPU."""
    import mindspore as ms

    inference.set_context(cfg)
    network = model.build_network(model.load_config(cfg))
    network.set_train(True)
    ids = ms.Tensor(np.random.default_rng(0).integers(3, 120, (2, SEQ + 1)).astype(np.int32))
    return float(network(ids, ids).astype(ms.float32).asnumpy().reshape(-1)[0])


def run_script(source: str, where) -> subprocess.CompletedProcess:
    """`source` in a fresh Python (a file: MindSpore compiles graphs from source files only)."""
    script = where / "probe.py"
    script.write_text(textwrap.dedent(source))
    env = dict(os.environ, GLOG_v="2")
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env)


def test_the_cpu_profile_itself_trains():
    """The control: with the profile's settings the same model runs (so the failures below are theirs)."""
    assert np.isfinite(train_loss(tiny_config()))


def test_float16_runs_on_cpu_bfloat16_does_not():
    """float16 families keep float16 on CPU; bfloat16 has no CPU kernels."""
    fp32 = train_loss(tiny_config())
    assert abs(train_loss(tiny_config(compute_dtype="float16", param_init_type="float16")) - fp32) < 1e-2
    with pytest.raises(TypeError, match=r"Select CPU operator\[\w+\] fail! Unsupported data type"):
        train_loss(tiny_config(compute_dtype="bfloat16", param_init_type="bfloat16"))


def test_fused_rms_norm_has_no_cpu_kernel():
    """MindFormers' default (the Ascend config does not set it) is the fused RmsNorm."""
    with pytest.raises(RuntimeError, match=r"Unsupported op \[RmsNorm\] on CPU"):
        train_loss(tiny_config(fused_rms_norm=True))


def test_flash_attention_has_no_cpu_kernel():
    with pytest.raises(RuntimeError, match=r"Unsupported op \[FlashAttentionScore\] on CPU"):
        train_loss(tiny_config(use_flash_attention=True))


def test_rotary_embedding_without_rope_slice_fails_on_cpu():
    with pytest.raises(ValueError, match="For BatchMatMul, inputs shape cannot be broadcast on CPU/GPU"):
        train_loss(tiny_config(use_rope_slice=False))


def _generate(use_past: bool, **model_config):
    """MindFormers' generate as the Ascend evaluate/predict call it: a right-padded batch, greedy."""
    from mathtune_pipeline.mindformers import candidates

    cfg = render.inference_config(tiny_config(**model_config), run_mode="predict", load_checkpoint="",
                                  max_new_tokens=2, use_past=use_past)
    inference.set_context(cfg)
    network = model.build_network(model.load_config(cfg))
    network.set_train(False)
    prompts = candidates.right_padded([[1, 5, 6, 7], [1, 9]], 0)
    return network.generate(prompts, max_new_tokens=2, min_new_tokens=1, do_sample=False, eos_token_id=2,
                            pad_token_id=0)


def test_generate_without_kv_cache_needs_argmax_ext():
    """The model runs; MindFormers' greedy pick (ArgMaxExt) has no CPU kernel."""
    with pytest.raises(RuntimeError, match="The kernel ArgMaxExt unregistered"):
        _generate(use_past=False)


def test_generate_with_kv_cache_needs_npu_rotary_embedding():
    with pytest.raises(TypeError, match=r"For primitive\[ApplyRotaryPosEmb\], the input argument\[key\] must be "
                                        r"a type of \{Tensor\[BFloat16\], Tensor\[Float16\]\}, but got "
                                        r"Tensor\[Float32\]"):
        _generate(use_past=True)
    with pytest.raises(RuntimeError, match=r"Unsupported op \[ApplyRotaryPosEmb\] on CPU"):
        _generate(use_past=True, compute_dtype="float16", param_init_type="float16", rotary_dtype="float16")


SINK = """
import numpy as np, mindspore as ms
from mindspore import nn, dataset as ds
from mindspore.train import Model, Callback
ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
data = ds.NumpySlicesDataset({"x": np.ones((8, 4), np.float32), "y": np.ones((8, 2), np.float32)},
                             shuffle=False).batch(2)
net = nn.WithLossCell(nn.Dense(4, 2), nn.MSELoss())
class Steps(Callback):
    def __init__(self):
        self.seen = []
    def on_train_step_end(self, run_context):
        p = run_context.original_args()
        self.seen.append((p.cur_step_num, p.dataset_sink_mode))
steps = Steps()
Model(nn.TrainOneStepCell(net, nn.SGD(net.trainable_params(), 0.1))).train(
    1, data, callbacks=[steps], dataset_sink_mode=True, sink_size=2)
print(steps.seen)
"""


def test_dataset_sink_mode_is_not_taken_on_cpu(tmp_path):
    """Asked to sink 2 steps of a 4-step dataset for 1 epoch, MindSpore on CPU runs the whole
    epoch unsunk ("The CPU cannot support dataset sink mode currently", an INFO line). A device
    that sinks calls back once, after step 2. So MindFormers' sink loops (epochs x steps /
    sink_size of them, each taken for an epoch) would train whole epochs each on CPU."""
    proc = run_script(SINK, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[(1, False), (2, False), (3, False), (4, False)]"


SEMI_AUTO = """
import numpy as np, mindspore as ms
from mindspore import nn
ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
ms.set_auto_parallel_context(parallel_mode="semi_auto_parallel", full_batch=True, device_num=1)
class Net(nn.Cell):
    def __init__(self):
        super().__init__()
        self.dense = nn.Dense(4, 2)
    def construct(self, x):
        return self.dense(x).sum()
Net()(ms.Tensor(np.ones((2, 4), np.float32)))
"""


def test_semi_auto_parallel_does_not_compile_on_cpu(tmp_path):
    """MindFormers' own LoRA configs use parallel_mode 1 with full_batch even for pure data
    parallel. The train stage's 2-rank msrun run of the tiny Llama with them fails with the
    same error from the same place (pipeline_split_utils.cc GetWorldGroup)."""
    proc = run_script(SEMI_AUTO, tmp_path)
    assert proc.returncode != 0
    assert "RuntimeError: Invalid backend: CPU" in proc.stderr and "GetWorldGroup" in proc.stderr


PARALLEL_OPTIMIZER = """
import mindspore as ms
from mindspore import nn
from mindformers.core.optim import AdamW
ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
ms.set_auto_parallel_context(parallel_mode="data_parallel", enable_parallel_optimizer=True)
AdamW(nn.Dense(4, 2).trainable_params())
"""


def test_parallel_optimizer_is_refused_on_cpu_in_data_parallel_mode(tmp_path):
    """Refused before the optimizer class is looked at, so the CPU profile checks the class
    itself (cpu.optimizer_supports_parallel) as Ascend would."""
    proc = run_script(PARALLEL_OPTIMIZER, tmp_path)
    assert proc.returncode != 0
    assert ('RuntimeError: For "Optimizer", parallel optimizer only supports "Ascend" in data parallel mode, '
            'but got CPU.') in proc.stderr
