"""MindFormers' checkpoint files: which epochs are saved, and complete on every rank.

MindFormers writes `<output>/checkpoint/rank_<r>/<prefix>_rank_<r>-<E>_<S>.ckpt`
(`CheckpointMonitor.save_checkpoint`): step S of its callbacks' "epoch" E.
Without sink mode that is the training epoch; in sink mode MindFormers turns
`epochs` into data_size / sink_size x epochs sink loops and E counts sink
loops, S steps within one (`trainer/utils.py`): seed 000's epoch 1 ends in
`-1523_2`. So a file's training epoch comes from its global step,
(E - 1) x steps per callback epoch + S, over the steps per training epoch:
`Cadence`. When a file of that prefix already exists (a resumed run)
MindSpore appends `_<n>` to the prefix: `<prefix>_rank_<r>_1-<E>_<S>.ckpt`.
An epoch is complete when every rank has its file; only complete epochs are
merged, evaluated or resumed from.
"""
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

_NAME = re.compile(r"^(?P<prefix>.+)_rank_(?P<rank>\d+)(?:_\d+)?-(?P<epoch>\d+)_(?P<step>\d+)\.ckpt$")


@dataclass(frozen=True)
class Cadence:
    """How the steps of a run are counted: per training epoch, and per
    "epoch" of MindFormers' callbacks (sink_size in sink mode)."""
    steps_per_epoch: int
    steps_per_callback_epoch: int

    @classmethod
    def of(cls, config: Dict[str, Any], steps_per_epoch: int) -> "Cadence":
        """The cadence of a rendered MindFormers config (its runner_config)."""
        runner = config["runner_config"]
        sink = runner.get("sink_mode") and int(runner.get("sink_size", -1)) > 0
        return cls(steps_per_epoch, int(runner["sink_size"]) if sink else steps_per_epoch)

    def global_step(self, file_epoch: int, step: int) -> int:
        return (file_epoch - 1) * self.steps_per_callback_epoch + step

    def epoch(self, file_epoch: int, step: int) -> int:
        """The training epoch a save belongs to: the one its last step is in."""
        return -(-self.global_step(file_epoch, step) // self.steps_per_epoch)


def aligned_sink_size(steps_per_epoch: int, sink_size: int) -> int:
    """The largest sink size up to `sink_size` that divides an epoch.

    MindFormers calls back (and so saves) only at the end of a sink loop, and
    runs int(steps_per_epoch / sink_size x epochs) loops: with 3045 steps an
    epoch and sink size 2, saves land one step into the next epoch and the
    run ends one step short of its last. A sink size dividing the epoch makes
    every epoch end on a loop's end."""
    return max(d for d in range(1, max(1, min(sink_size, steps_per_epoch)) + 1) if steps_per_epoch % d == 0)


def scan(checkpoint_dir: Union[str, Path], cadence: Cadence) -> Dict[int, Dict[int, Path]]:
    """{training epoch: {rank: file}}, the last save of each epoch per rank."""
    found: Dict[int, Dict[int, tuple]] = defaultdict(dict)
    root = Path(checkpoint_dir)
    for rank_dir in sorted(root.glob("rank_*")):
        for path in rank_dir.glob("*.ckpt"):
            m = _NAME.match(path.name)
            if not m or f"rank_{m.group('rank')}" != rank_dir.name:
                continue
            file_epoch, step, rank = int(m.group("epoch")), int(m.group("step")), int(m.group("rank"))
            epoch = cadence.epoch(file_epoch, step)
            # The latest save of the epoch wins; of two saves of the same step, the later file.
            order = (cadence.global_step(file_epoch, step), path.stat().st_mtime)
            if order >= found[epoch].get(rank, ((-1, 0.0), None))[0]:
                found[epoch][rank] = (order, path)
    return {e: {r: p for r, (_, p) in ranks.items()} for e, ranks in sorted(found.items())}


def saved_step(path: Union[str, Path], cadence: Cadence) -> Optional[int]:
    """The global training step a save was taken at (None: not a save's name)."""
    m = _NAME.match(Path(path).name)
    return cadence.global_step(int(m.group("epoch")), int(m.group("step"))) if m else None


def complete_epochs(checkpoint_dir: Union[str, Path], ranks: int, cadence: Cadence) -> Dict[int, Dict[int, Path]]:
    return {e: files for e, files in scan(checkpoint_dir, cadence).items() if set(files) == set(range(ranks))}


def last_complete(checkpoint_dir: Union[str, Path], ranks: int, cadence: Cadence) -> Optional[int]:
    epochs: List[int] = list(complete_epochs(checkpoint_dir, ranks, cadence))
    return epochs[-1] if epochs else None
