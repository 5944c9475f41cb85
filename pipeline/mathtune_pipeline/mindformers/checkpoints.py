"""MindFormers' checkpoint files: which epochs are saved, and complete on every rank.

MindFormers writes `<output>/checkpoint/rank_<r>/<prefix>_rank_<r>-<epoch>_<step>.ckpt`
(step within the epoch's save interval); when a file of that prefix already
exists (a resumed run) MindSpore appends `_<n>` to the prefix:
`<prefix>_rank_<r>_1-<epoch>_<step>.ckpt`. An epoch is complete when every rank
has its file; only complete epochs are merged, evaluated or resumed from.
"""
import re
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional, Union

_NAME = re.compile(r"^(?P<prefix>.+)_rank_(?P<rank>\d+)(?:_\d+)?-(?P<epoch>\d+)_(?P<step>\d+)\.ckpt$")


def scan(checkpoint_dir: Union[str, Path]) -> Dict[int, Dict[int, Path]]:
    """{epoch: {rank: file}}, the last save of each epoch per rank."""
    found: Dict[int, Dict[int, tuple]] = defaultdict(dict)
    root = Path(checkpoint_dir)
    for rank_dir in sorted(root.glob("rank_*")):
        for path in rank_dir.glob("*.ckpt"):
            m = _NAME.match(path.name)
            if not m or f"rank_{m.group('rank')}" != rank_dir.name:
                continue
            epoch, rank = int(m.group("epoch")), int(m.group("rank"))
            order = (int(m.group("step")), path.stat().st_mtime)  # a later save of the same step wins
            if order >= found[epoch].get(rank, ((-1, 0.0), None))[0]:
                found[epoch][rank] = (order, path)
    return {e: {r: p for r, (_, p) in ranks.items()} for e, ranks in sorted(found.items())}


def complete_epochs(checkpoint_dir: Union[str, Path], ranks: int) -> Dict[int, Dict[int, Path]]:
    return {e: files for e, files in scan(checkpoint_dir).items() if set(files) == set(range(ranks))}


def last_complete(checkpoint_dir: Union[str, Path], ranks: int) -> Optional[int]:
    epochs: List[int] = list(complete_epochs(checkpoint_dir, ranks))
    return epochs[-1] if epochs else None
