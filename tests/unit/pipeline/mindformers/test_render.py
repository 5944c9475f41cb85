"""Config rendering: the seeds' real config reproduced, adapted to MindFormers 1.9, read by MindFormers."""
import copy
from pathlib import Path

import pytest
import yaml

from mathtune_pipeline.errors import SpecError
from mathtune_pipeline.mindformers import counts, cpu, dialect, families, render
from tests.specs import changed, typed

from .conftest import RUN1

EXAMPLES = Path(__file__).resolve().parents[4] / "examples"


def _diff(got, want, path=""):
    """Every key path where two configs differ (missing, extra, other value or type)."""
    out = []
    if isinstance(got, dict) and isinstance(want, dict):
        for key in list(want) + [k for k in got if k not in want]:
            where = f"{path}.{key}" if path else key
            if key not in got:
                out.append(f"missing {where}")
            elif key not in want:
                out.append(f"extra {where}")
            else:
                out += _diff(got[key], want[key], where)
    elif isinstance(got, list) and isinstance(want, list) and len(got) == len(want):
        for i, (a, b) in enumerate(zip(got, want)):
            out += _diff(a, b, f"{path}[{i}]")
    elif got != want or type(got) is not type(want):
        out.append(f"{path}: {got!r} != {want!r}")
    return out


def test_finetune_config_equals_the_seeds_real_config(run1_spec, real_fixtures):
    want = yaml.safe_load((real_fixtures / "mindformers-logs" / "finetune_config_run1.yaml").read_text())
    got = render.finetune_config(run1_spec, dataset_dir="", load_checkpoint=run1_spec.model.checkpoint,
                                 output_dir="./output", save_checkpoint_steps=535)
    assert _diff(got, want) == []
    assert list(got) == list(want)  # same key order, so the files read alike


def test_changed_defaults_are_written(run1_spec):
    spec = changed(run1_spec, {"training": {"optimizer": {"weightDecay": 0.01}, "checkpoint": {"keepMax": 10}}})
    got = render.finetune_config(spec, dataset_dir="d", load_checkpoint="c", save_checkpoint_steps=3)
    assert got["optimizer"]["weight_decay"] == 0.01
    assert got["callbacks"][1]["keep_checkpoint_max"] == 10
    assert got["train_dataset"]["data_loader"]["dataset_dir"] == "d"
    assert got["parallel"]["parallel_mode"] == 1 and got["parallel"]["full_batch"] is True


def test_bucketed_rows_render_mindformers_dynamic_batches(run1_spec):
    padded = render.finetune_config(run1_spec, dataset_dir="d", load_checkpoint="c", save_checkpoint_steps=3)
    assert "is_dynamic" not in padded["model"]["model_config"] and "dynamic_batch" not in padded["train_dataset"]
    got = render.finetune_config(run1_spec, dataset_dir="d", load_checkpoint="c", save_checkpoint_steps=3,
                                 special_tokens={"pad_token_id": 128002}, batching={"mode": "bucketed", "multiple": 16})
    data = got["train_dataset"]
    assert (data["dynamic_batch"], data["divisor"], data["remainder"], data["pad_token_id"]) == (True, 16, 1,
                                                                                                 [128002, -100])
    assert data["data_loader"]["shuffle"] is False and got["model"]["model_config"]["is_dynamic"] is True
    assert got["train_dataset_task"]["dataset_config"] is data


def test_data_parallel_only_renders_mode_0():
    spec = typed({**RUN1, "resources": {"npusPerNode": 4, "nodes": 2, "parallel": {
        "dataParallel": 8, "modelParallel": 1, "pipelineStage": 1, "microBatchNum": 1}}})
    got = render.finetune_config(spec, dataset_dir="", load_checkpoint="", save_checkpoint_steps=1)
    assert got["parallel"]["parallel_mode"] == 0 and got["parallel"]["full_batch"] is False
    assert got["parallel_config"]["data_parallel"] == 8 and got["use_parallel"] is True


@pytest.mark.parametrize("change, field", [
    ({"resources": {"npusPerNode": 4, "nodes": 1, "parallel": {"dataParallel": 2, "modelParallel": 4,
                                                               "pipelineStage": 1, "microBatchNum": 1}}},
     "spec.resources.parallel"),
    ({"lora": {"targetModules": []}}, "spec.lora.targetModules"),
    ({"lora": {"rank": 0}}, "spec.lora.rank"),
    ({"lora": {"dropout": 1.5}}, "spec.lora.dropout"),
    ({"model": {"family": "gpt-5"}}, "spec.model.family"),
    ({"model": {"family": "tiny-llama", "tiny": {"numLayers": 2, "hiddenSize": 66, "numHeads": 4,
                                                  "vocabSize": 512}}}, "spec.model.tiny"),
])
def test_bad_spec_names_the_field(change, field):
    raw = copy.deepcopy(RUN1)
    for key, value in change.items():
        raw[key] = {**raw.get(key, {}), **value}
    with pytest.raises(SpecError) as err:
        render.finetune_config(typed(raw), dataset_dir="", load_checkpoint="", save_checkpoint_steps=1)
    assert err.value.field == field


def test_lora_pattern_selects_projections():
    assert render.target_modules(["wq", "wv"]) == ".*wq|.*wv"
    assert counts.targeted(".*wq|.*wv|.*wk") == ("wq", "wk", "wv")
    with pytest.raises(SpecError, match="selects none"):
        counts.targeted(".*nothing")


def test_analytic_counts_of_the_seeds_models():
    llama3 = families.FAMILIES["llama3-8b"]["model_config"]
    internlm = families.FAMILIES["internlm-7b"]["model_config"]
    assert counts.lora_params(llama3, {"lora_rank": 8, "target_modules": ".*wq|.*wv"}) == 3_407_872
    assert counts.lora_params(internlm, {"lora_rank": 8, "target_modules": ".*wq|.*wk|.*wv|.*wo"}) == 8_388_608
    # The fixture log's run (wq, wv, wk) printed "Network Parameters: 4718592."
    assert counts.lora_params(llama3, {"lora_rank": 8, "target_modules": ".*wq|.*wv|.*wk"}) == 4_718_592
    assert counts.base_params(llama3) == 8_030_261_248          # "8.03e9" in seed 000's ratio
    assert round(counts.base_params(internlm) / 1e9, 3) == 7.322  # REFERENCE: 7.321e9 (0.1146%)
    assert round(100 * 8_388_608 / counts.base_params(internlm), 4) == 0.1146


def test_adapted_for_mindformers_19(run1_spec):
    seeds = render.finetune_config(run1_spec, dataset_dir="", load_checkpoint="", save_checkpoint_steps=535)
    got = dialect.adapt(seeds, "1.9.0")
    assert got["optimizer"] == {"type": "AdamW", "betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.0}
    assert [cb["type"] for cb in got["callbacks"]] == ["MFLossMonitor", "CheckpointMonitor"]
    assert "eval_callbacks" not in got and "remote_save_url" not in got
    # The seeds' MindFormers keeps the seeds' vocabulary.
    assert dialect.adapt(seeds, "1.1.0") == seeds


def test_internlm_is_llama_with_biases_in_19():
    spec = typed({**RUN1, "model": {"family": "internlm-7b"}})
    got = dialect.adapt(render.finetune_config(spec, dataset_dir="", load_checkpoint="", save_checkpoint_steps=1),
                        "1.9.0")
    mc = got["model"]["model_config"]
    assert (mc["type"], got["model"]["arch"]["type"]) == ("LlamaConfig", "LlamaForCausalLM")
    assert mc["qkv_has_bias"] is True and mc["attn_proj_has_bias"] is True and "has_bias" not in mc


def test_cpu_profile_refuses_model_parallel(run1_spec):
    seeds = render.finetune_config(run1_spec, dataset_dir="", load_checkpoint="", save_checkpoint_steps=1)
    with pytest.raises(SpecError) as err:
        cpu.cpu_profile(seeds)
    assert err.value.field == "spec.resources.parallel"


@pytest.mark.parametrize("family", ["llama3-8b", "internlm-7b", "llama-7b"])
def test_full_size_configs_load_in_mindformers(family, tmp_path):
    from mathtune_pipeline.mindformers import model

    spec = typed({**RUN1, "model": {"family": family}})
    cfg = dialect.adapt(render.finetune_config(spec, dataset_dir="", load_checkpoint="", save_checkpoint_steps=1))
    path = model.write_config(cfg, tmp_path / "finetune.yaml")
    loaded = model.load_config(path)
    assert loaded.model.model_config.pet_config.target_modules == ".*wq|.*wv|.*wk"
    assert loaded.runner_config.epochs == 5 and loaded.optimizer.type == "AdamW"
    assert loaded.model.arch.type == "LlamaForCausalLM"


@pytest.mark.parametrize("run_mode", ["eval", "predict"])
def test_eval_and_predict_configs(run1_spec, run_mode, tmp_path):
    from mathtune_pipeline.mindformers import model

    finetune = render.finetune_config(run1_spec, dataset_dir="", load_checkpoint="", save_checkpoint_steps=1,
                                      batching={"mode": "bucketed", "multiple": 8})
    got = render.inference_config(finetune, run_mode=run_mode, load_checkpoint="/m/merged.ckpt",
                                  max_new_tokens=20, use_past=True)
    mc = got["model"]["model_config"]
    # Bucketed training's symbolic sequence axis is training's alone.
    assert finetune["model"]["model_config"]["is_dynamic"] is True and "is_dynamic" not in mc
    assert got["run_mode"] == run_mode and got["load_checkpoint"] == "/m/merged.ckpt"
    assert got["use_parallel"] is False and got["parallel_config"]["model_parallel"] == 1
    assert "pet_config" not in mc  # a merged checkpoint: LoRA is in the weights
    assert (mc["use_past"], mc["max_new_tokens"], mc["min_new_tokens"], mc["do_sample"]) == (True, 20, 1, False)
    assert (got.get("metric") == {"type": "EmF1Metric"}) == (run_mode == "eval")
    assert "pet_config" in finetune["model"]["model_config"]  # the finetune config is left alone
    loaded = model.load_config(model.write_config(dialect.adapt(got), tmp_path / f"{run_mode}.yaml"))
    assert loaded.model.model_config.max_new_tokens == 20
    with pytest.raises(ValueError):
        render.inference_config(finetune, run_mode="train", load_checkpoint="", max_new_tokens=1, use_past=False)


def test_whole_numbers_from_the_api_server_render_as_floats():
    """The API server returns a spec as JSON, where 0.0 comes back as 0: a
    LoRA dropout of 0 reached MindPET as an int and training failed on the
    real node ("the 'lora_dropout' must be 'float', but got 'int'")."""
    from mindpet.delta.lora import INC_LEFT, Validator  # the check LoRADense runs

    spec = yaml.safe_load((EXAMPLES / "run-cpu.yaml").read_text())["spec"]
    spec["lora"]["dropout"] = 0
    spec["training"].setdefault("optimizer", {}).update(beta1=0, eps=1, weightDecay=1)
    spec["training"].setdefault("lrSchedule", {}).update(learningRate=1, lrEnd=0, warmupRatio=0)
    spec = typed(spec)
    config = render.finetune_config(spec, dataset_dir="/tmp/d", load_checkpoint="", save_checkpoint_steps=1)
    pet = config["model"]["model_config"]["pet_config"]
    # MindPET's own check of LoRADense's dropout (mindpet/delta/lora.py).
    Validator.check_float_range(arg_value=pet["lora_dropout"], lower_limit=0.0, upper_limit=1.0, rel=INC_LEFT,
                                arg_name="lora_dropout", prim_name="LoRADense")
    floats = [pet["lora_dropout"], *(config["optimizer"][k] for k in ("beta1", "beta2", "eps", "weight_decay")),
              *(config["lr_schedule"][k] for k in ("learning_rate", "lr_end", "warmup_ratio"))]
    assert all(type(v) is float for v in floats), floats


@pytest.mark.parametrize("kind", ["CosineWithWarmUpLR", "LinearWithWarmUpLR", "ConstantWarmUpLR", "constant"])
def test_every_lr_schedule_the_crd_accepts_is_one_mindformers_builds(kind):
    """MindFormers' own registry builds the rendered schedule (MindFormers
    1.9 registers no LR named `constant`: such a run failed in training on
    every rank). `constant` keeps the rate from the first step to the last."""
    import numpy as np
    from mindformers.core.lr import build_lr
    from mindspore import Tensor, int32

    spec = typed({**RUN1, "training": {"lrSchedule": {"type": kind, "learningRate": 2.0e-3, "warmupRatio": 0.1}}})
    config = dict(render.finetune_config(spec, dataset_dir="", load_checkpoint="", save_checkpoint_steps=1)[
        "lr_schedule"], total_steps=100)
    schedule = build_lr(config)
    rates = [float(schedule(Tensor(step, int32)).asnumpy()) for step in (0, 50, 99)]
    assert all(np.isfinite(rates)) and max(rates) <= 2.0e-3 * (1 + 1e-6)
    if kind == "constant":
        assert rates == pytest.approx([2.0e-3] * 3)
