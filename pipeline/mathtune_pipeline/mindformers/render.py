"""MindFormers run configs (finetune, eval, predict) rendered from the run spec.

The finetune config is the seeds' own: for the same inputs it equals the real
config of the seeds' run (`fixtures/mindformers-logs/finetune_config_run1.yaml`)
key by key, in the seeds' MindFormers (r1.1) vocabulary. Two keys the seeds
left at MindFormers' defaults are written only when the spec changes them:
`optimizer.weight_decay` (0.0) and the checkpoint callback's
`keep_checkpoint_max` (5). `dialect.adapt()` turns the result into what the
installed MindFormers reads; `cpu_profile()` into what trains on CPU.

Everything a run decides (paths, step counts, ranks) is an argument, so the
renderers are pure functions and the stage code only gathers the inputs.
"""
import copy
from typing import Any, Dict, List, Optional

from mathtune_api import MathFinetuneSpec as Spec

from ..errors import SpecError
from . import families

# Values the seeds' run config carries that no spec field decides.
GRAPH_KERNEL_FLAGS = ("--disable_expand_ops=Softmax,Dropout --enable_parallel_fusion=true "
                      "--reduce_fuse_depth=8 --enable_auto_tensor_inplace=true")
MINDFORMERS_DEFAULT_KEEP = 5


def target_modules(modules: List[str]) -> str:
    """`[wq, wv]` -> MindFormers' `'.*wq|.*wv'` (order kept: the seeds' logs list them so)."""
    if not modules or not all(isinstance(m, str) and m.strip() for m in modules):
        raise SpecError("spec.lora.targetModules", "a non-empty list of module names such as [wq, wv]")
    return "|".join(f".*{m.strip()}" for m in modules)


def pet_config(spec: Spec) -> Dict[str, Any]:
    lora = spec.lora
    # float(): a spec read back from the API server holds 0 for 0.0 (JSON has
    # one number type), and MindPET's LoRADense refuses an int dropout.
    return {"pet_type": "lora", "lora_rank": lora.rank, "lora_alpha": lora.whole_alpha, "lora_dropout": float(lora.dropout),
            "target_modules": target_modules(list(lora.target_modules))}


def _dataset(dataset_dir: str, columns: List[str], shuffle: bool, drop_remainder: bool,
             batch_size: Optional[int]) -> Dict[str, Any]:
    out: Dict[str, Any] = {
        "data_loader": {"type": "MindDataset", "dataset_dir": dataset_dir, "shuffle": shuffle},
        "input_columns": columns,
        "num_parallel_workers": 8,
        "python_multiprocessing": False,
        "drop_remainder": drop_remainder,
    }
    if batch_size is not None:
        out["batch_size"] = batch_size
    out.update({"repeat": 1, "numa_enable": False, "prefetch_size": 1})
    return out


def bucketed_batches(train_dataset: Dict[str, Any], model_config: Dict[str, Any], multiple: int, pad_id: int) -> None:
    """MindFormers 1.9's dynamic batches: the loader pads each batch to its
    longest row rounded to k * divisor + remainder (causal_language_model_dataset.py,
    dyn_batch_wrapper; input_ids with the pad id, labels with -100), the
    Trainer declares that axis symbolic (base_trainer.py, "if
    config.train_dataset.dynamic_batch"), and the model must be built dynamic.
    The loader must keep the written order: it holds the buckets."""
    train_dataset["data_loader"]["shuffle"] = False
    train_dataset.update({"dynamic_batch": True, "divisor": multiple, "remainder": 1,
                          "pad_token_id": [int(pad_id), -100]})
    model_config["is_dynamic"] = True


# MindFormers' own LoRA configs for its fp16 models (llama_7b, internlm_7b),
# and what seed 002 names ("动态损失缩放", dynamic loss scaling).
DYNAMIC_LOSS_SCALE = {"type": "DynamicLossScaleUpdateCell", "loss_scale_value": 65536, "scale_factor": 2,
                      "scale_window": 1000}


def loss_scale(model_config: Dict[str, Any]) -> Any:
    """Dynamic loss scaling for models that compute in float16, whose small
    gradients underflow without it; bfloat16 has float32's range and trains
    at a fixed scale of 1 (the seeds' Llama3-8B config)."""
    return dict(DYNAMIC_LOSS_SCALE) if model_config.get("compute_dtype") == "float16" else 1.0


def parallel_mode(spec: Spec) -> int:
    """0 data parallel when every card holds the whole model, else 1 semi-auto parallel."""
    p = spec.resources.parallel
    return 1 if p.model_parallel > 1 or p.pipeline_stage > 1 else 0


def check_parallel(spec: Spec) -> None:
    p = spec.resources.parallel
    devices = spec.resources.devices
    used = p.data_parallel * p.model_parallel * p.pipeline_stage
    if used != devices:
        raise SpecError("spec.resources.parallel",
                        f"dataParallel x modelParallel x pipelineStage = npusPerNode x nodes "
                        f"({p.data_parallel} x {p.model_parallel} x {p.pipeline_stage} = {used}, "
                        f"devices {devices})")


def finetune_config(spec: Spec, *, dataset_dir: str, load_checkpoint: str,
                    output_dir: str = "./output", save_checkpoint_steps: int,
                    use_parallel: Optional[bool] = None, seq_length: Optional[int] = None,
                    special_tokens: Optional[Dict[str, int]] = None,
                    sink_size: Optional[int] = None,
                    batching: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The MindFormers finetune config for `spec`, in the seeds' vocabulary.

    `seq_length` and `special_tokens` are the tokenized data's (its manifest),
    when known: the spec may say `seqLength: auto`, and the tiny model takes
    its tokenizer's ids. `sink_size` replaces the spec's when the train stage
    aligns sink loops with epochs (checkpoints.aligned_sink_size).
    `batching` is how tokenize laid the rows out (its manifest): bucketed rows
    train with MindFormers' dynamic batches (see `bucketed_batches`).
    """
    fam = families.family(spec)
    training = spec.training
    check_parallel(spec)
    if save_checkpoint_steps < 1:
        raise SpecError("spec.training.checkpoint.saveSteps", f"a positive step count (got {save_checkpoint_steps})")
    mode = parallel_mode(spec)
    devices = spec.resources.devices
    if use_parallel is None:
        use_parallel = devices > 1

    opt = training.optimizer
    # Floats whatever the API server returned (0 for 0.0): MindSpore's
    # optimizers and MindPET check the Python type of these arguments.
    optimizer = {"type": opt.type, "beta1": float(opt.beta1), "beta2": float(opt.beta2), "eps": float(opt.eps)}
    if opt.weight_decay:
        optimizer["weight_decay"] = float(opt.weight_decay)
    lr = training.lr_schedule
    # MindFormers 1.9 registers no LR named "constant": a constant rate is its
    # ConstantWarmUpLR with no warm-up.
    lr_type, warmup = ("ConstantWarmUpLR", 0.0) if lr.type == "constant" else (lr.type, float(lr.warmup_ratio))
    ckpt = training.checkpoint
    checkpoint_cb = {"type": "CheckpointMointor",  # sic: the callback's name in MindFormers r1.1
                     "prefix": fam["model_name"], "save_checkpoint_steps": save_checkpoint_steps}
    if ckpt.keep_max != MINDFORMERS_DEFAULT_KEEP:
        checkpoint_cb["keep_checkpoint_max"] = ckpt.keep_max
    checkpoint_cb.update({"integrated_save": False, "async_save": False})

    model_config = dict(fam["model_config"])
    model_config["seq_length"] = seq_length if seq_length is not None else spec.data.seq_length
    if not isinstance(model_config["seq_length"], int) or model_config["seq_length"] < 1:
        raise SpecError("spec.data.seqLength", f"a token count (got {model_config['seq_length']!r}; "
                                               f"'auto' is resolved by the tokenize stage)")
    if special_tokens and spec.model.family == "tiny-llama":
        model_config.update(special_tokens)
    model_config["pet_config"] = pet_config(spec)
    par = spec.resources.parallel
    train_dataset = _dataset(dataset_dir, ["input_ids", "labels"], True, True, 1)
    if batching and batching.get("mode") == "bucketed":
        pad = (special_tokens or {}).get("pad_token_id", model_config.get("pad_token_id", 0))
        bucketed_batches(train_dataset, model_config, batching["multiple"], int(pad or 0))
    eval_dataset = _dataset("", ["input_ids"], False, False, None)
    return {
        "seed": training.seed,
        "output_dir": output_dir,
        "load_checkpoint": load_checkpoint,
        "src_strategy_path_or_dir": "",
        "auto_trans_ckpt": False,
        "only_save_strategy": False,
        "resume_training": False,
        "run_mode": "finetune",
        "trainer": {"type": "CausalLanguageModelingTrainer", "model_name": fam["model_name"]},
        "runner_config": {"epochs": training.epochs, "batch_size": training.batch_size,
                          "sink_mode": training.sink_mode,
                          "sink_size": sink_size if sink_size is not None else training.sink_size},
        "optimizer": optimizer,
        "lr_schedule": {"type": lr_type, "learning_rate": float(lr.learning_rate),
                        "lr_end": float(lr.lr_end), "warmup_ratio": warmup, "total_steps": -1},
        "train_dataset": train_dataset,
        "train_dataset_task": {"type": "CausalLanguageModelDataset", "dataset_config": train_dataset},
        "do_eval": False,
        "eval_dataset": eval_dataset,
        "eval_dataset_task": {"type": "CausalLanguageModelDataset", "dataset_config": eval_dataset},
        "use_parallel": use_parallel,
        "parallel": {
            "parallel_mode": mode,
            "gradients_mean": False,
            "enable_alltoall": False,
            "full_batch": mode == 1,
            "search_mode": "sharding_propagation",
            "enable_parallel_optimizer": True,
            "strategy_ckpt_config": {"save_file": "./ckpt_strategy.ckpt", "only_trainable_params": False},
            "parallel_optimizer_config": {"gradient_accumulation_shard": False, "parallel_optimizer_threshold": 64},
        },
        "parallel_config": {"data_parallel": par.data_parallel, "model_parallel": par.model_parallel,
                            "pipeline_stage": par.pipeline_stage, "use_seq_parallel": False,
                            "micro_batch_num": par.micro_batch_num, "vocab_emb_dp": True,
                            "gradient_aggregation_group": 4},
        "micro_batch_interleave_num": 1,
        "recompute_config": {"recompute": True, "select_recompute": False,
                             "parallel_optimizer_comm_recompute": False, "mp_comm_recompute": True,
                             "recompute_slice_activation": True},
        "callbacks": [{"type": "MFLossMonitor"}, checkpoint_cb, {"type": "ObsMonitor"}],
        "context": {"mode": 0, "device_target": "Ascend", "enable_graph_kernel": False,
                    "graph_kernel_flags": GRAPH_KERNEL_FLAGS, "max_call_depth": 10000,
                    "max_device_memory": training.max_device_memory, "save_graphs": False,
                    "save_graphs_path": "./graph", "device_id": 0, "runtime_num_threads": 1},
        "model": {"model_config": model_config, "arch": {"type": fam["arch"]}},
        "metric": {"type": "PerplexityMetric"},
        "runner_wrapper": {"type": "MFTrainOneStepCell", "scale_sense": loss_scale(model_config),
                           "use_clip_grad": True},
        "eval_callbacks": [{"type": "ObsMonitor"}],
        "auto_tune": False,
        "filepath_prefix": "./autotune",
        "autotune_per_step": 10,
        "profile": False,
        "profile_start_step": 4,
        "profile_stop_step": 8,
        "init_start_profile": False,
        "profile_communication": False,
        "profile_memory": True,
        "layer_scale": False,
        "layer_decay": 0.65,
        "lr_scale_factor": 256,
        "remote_save_url": "Please input obs url on AICC platform.",
    }


def inference_config(finetune: Dict[str, Any], *, run_mode: str, load_checkpoint: str,
                     max_new_tokens: int, use_past: bool, keep_lora: bool = False) -> Dict[str, Any]:
    """The eval/predict config of a finetune config's model: one card, generation settings.

    The checkpoint given is normally a merged one (LoRA folded in), so no
    pet_config (`keep_lora` runs an unmerged training checkpoint). SQuAD eval
    needs `min_new_tokens: 1` or most answers come back empty (REFERENCE §3).
    Works on a config in either MindFormers vocabulary (dialect.py).
    """
    if run_mode not in ("eval", "predict"):
        raise ValueError(f"run_mode must be eval or predict, not {run_mode}")
    cfg = copy.deepcopy(finetune)
    cfg.update({"run_mode": run_mode, "load_checkpoint": load_checkpoint, "use_parallel": False,
                "auto_trans_ckpt": False})
    cfg["parallel_config"].update({"data_parallel": 1, "model_parallel": 1, "pipeline_stage": 1})
    cfg["parallel"]["parallel_mode"] = 0
    cfg["parallel"]["full_batch"] = False
    model_config = cfg["model"]["model_config"]
    if not keep_lora:
        model_config.pop("pet_config", None)
    # Bucketed training declares the sequence axis symbolic; generation runs
    # its own fixed shapes (and MindFormers' dynamic inference path needs
    # CumsumExt, which has no CPU kernel).
    model_config.pop("is_dynamic", None)
    model_config.update({"use_past": use_past, "max_new_tokens": max_new_tokens, "min_new_tokens": 1,
                         "do_sample": False})
    if run_mode == "eval":
        cfg["metric"] = {"type": "EmF1Metric"}
    return cfg
