"""The tokenize stage's MindRecord shards, as training reads them."""
import re
from pathlib import Path
from typing import Any, Dict, List, Union

from ..errors import SpecError

# FileWriter names one file `x.mindrecord`, N shards `x.mindrecord0..N-1`; `.db` files are their indexes.
_SHARD = re.compile(r"\.mindrecord\d*$")


def shards(data_dir: Union[str, Path]) -> List[Path]:
    data_dir = Path(data_dir)
    found = sorted(p for p in data_dir.glob("*") if _SHARD.search(p.name))
    if not found:
        raise SpecError(str(data_dir), "MindRecord shards written by the tokenize stage (run tokenize first)")
    return found


def layout(data_dir: Union[str, Path]) -> Dict[str, Any]:
    """What the tokenize stage's manifest says the rows are: seqLength (resolved when the spec
    says "auto"), the batching they are laid out for and the tokenizer's special ids.
    Empty when the shards came without one."""
    from ..artifacts import read_manifest

    manifest = read_manifest(Path(data_dir)) or {}
    out: Dict[str, Any] = {}
    if "seqLength" in manifest.get("counts", {}):
        out["seqLength"] = int(manifest["counts"]["seqLength"])
    if isinstance(manifest.get("batching"), dict):
        out["batching"] = manifest["batching"]
    tokenizer = manifest.get("tokenizer") or {}
    if {"bos", "eos", "pad"} <= set(tokenizer):
        out["tokens"] = {"bos_token_id": tokenizer["bos"], "eos_token_id": tokenizer["eos"],
                         "pad_token_id": tokenizer["pad"]}
    return out


def count_rows(files: List[Path]) -> int:
    """The rows of the shards, every one read through: a shard that cannot
    be read (truncated, overwritten, not a MindRecord) is bad input, said
    here, not a crash inside the training workers that would be retried.
    Reading them all costs seconds; a training run, hours."""
    import mindspore.dataset as ds

    names = ", ".join(str(f) for f in files)
    expected = "MindRecord shards as the tokenize stage wrote them (run tokenize again)"
    try:
        dataset = ds.MindDataset([str(f) for f in files], columns_list=["input_ids", "labels"], shuffle=False)
        declared = dataset.get_dataset_size()
        read = sum(1 for _ in dataset.create_tuple_iterator(output_numpy=True, num_epochs=1))
    except (RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpecError(names, f"{expected}; reading failed: {first}") from None
    if read != declared:
        raise SpecError(names, f"{expected}; their index declares {declared} rows, {read} could be read")
    return read


def steps_per_epoch(rows: int, batch_size: int, data_parallel: int) -> int:
    """Steps MindFormers runs per epoch: each data-parallel rank reads ceil(rows / dp) rows,
    in batches of `batch_size`, the last partial batch dropped (drop_remainder)."""
    per_rank = -(-rows // data_parallel)
    steps = per_rank // batch_size
    if steps < 1:
        raise SpecError("spec.training.batchSize", f"at most the rows each data-parallel rank reads "
                                                   f"({rows} rows over {data_parallel} ranks = {per_rank}; "
                                                   f"batchSize {batch_size})")
    return steps
