"""The training process msrun starts on every rank: MindFormers' Trainer, finetune, as configured.

msrun runs `python <this file> --config <yaml>` itself, once per rank (it sets
RANK_ID and friends), so this file is a script and imports absolutely. On CPU
(the config's `context.device_target`) two MindFormers pieces that assume an
NPU are replaced before MindFormers is imported: the barrier (cpu_barrier.py)
and the training step (cpu_wrapper.py registers `CpuTrainOneStepCell`, which
the CPU profile's config names).
"""
import argparse
import os
import sys
from pathlib import Path

import yaml


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="MindFormers run config (finetune.yaml)")
    args = parser.parse_args(argv)

    with open(args.config, encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)
    on_cpu = (raw.get("context") or {}).get("device_target") == "CPU"
    if on_cpu:
        from mathtune_pipeline.mindformers import cpu_barrier

        # A fresh directory per launch: msrun's job id keeps attempts apart.
        cpu_barrier.install(Path(raw["output_dir"]) / "barrier" / os.environ.get("MS_SCHED_PORT", "0"))
    from mindformers import MindFormerConfig, Trainer, build_context

    if on_cpu:
        from mathtune_pipeline.mindformers import cpu_wrapper  # noqa: F401 - registers the CPU training step

    config = MindFormerConfig(args.config)
    # The Trainer does not set up the device and parallel context itself: without
    # this, every rank runs stand-alone and gradients are never all-reduced.
    build_context(config)
    # As MindFormers' own run script does: the Trainer loads the checkpoint it is
    # handed here, not the config's `load_checkpoint` (ignored on this path).
    Trainer(args=config, task="text_generation").finetune(
        finetune_checkpoint=config.load_checkpoint or False,
        resume_training=config.resume_training,
        auto_trans_ckpt=config.auto_trans_ckpt,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
