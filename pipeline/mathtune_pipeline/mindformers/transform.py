"""Distributed checkpoints -> one complete checkpoint per epoch.

With model or pipeline parallelism each rank holds slices; MindSpore's
`transform_checkpoints` reassembles them with the strategy files training
saved (what MindFormers' transform_ckpt.py wraps). It takes the last file of
each `rank_<r>/` directory, so every epoch is staged on its own. Data-parallel
training (the CPU profile, and any run with modelParallel = pipelineStage = 1)
saves no strategy: every rank holds the whole model (the train tests check the
ranks are identical), so rank 0's file is the complete checkpoint, read where
it is (no copy: on an 8B model that is 16-32 GB of the work volume).
"""
import shutil
import tempfile
from pathlib import Path
from typing import Dict


def strategy_files(strategy_dir: Path):
    return sorted(Path(strategy_dir).glob("*.ckpt")) if Path(strategy_dir).is_dir() else []


def complete_checkpoint(rank_files: Dict[int, Path], strategy_dir: Path, dst: Path) -> Path:
    """The epoch's complete checkpoint: rank 0's file when there is no
    strategy, else reassembled into `dst` from the per-rank files."""
    strategies = strategy_files(strategy_dir)
    if not strategies:
        return Path(rank_files[0])
    dst.parent.mkdir(parents=True, exist_ok=True)
    import mindspore as ms

    with tempfile.TemporaryDirectory(dir=dst.parent) as tmp:
        tmp = Path(tmp)
        merged_strategy = tmp / "strategy.ckpt"
        ms.merge_pipeline_strategys(str(Path(strategy_dir)), str(merged_strategy))
        src = tmp / "src"
        for rank, path in rank_files.items():
            (src / f"rank_{rank}").mkdir(parents=True)
            (src / f"rank_{rank}" / path.name).symlink_to(path.resolve())
        out = tmp / "dst"
        ms.transform_checkpoints(str(src), str(out), "complete_", str(merged_strategy), None)
        produced = sorted((out / "rank_0").glob("*.ckpt"))
        if len(produced) != 1:
            raise RuntimeError(f"transform_checkpoints wrote {len(produced)} files for rank 0")
        shutil.move(str(produced[0]), str(dst))
    return dst
