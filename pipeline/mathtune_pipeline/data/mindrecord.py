"""MindRecord shards in MindFormers' qa schema.

Each shard is an independent MindRecord file (`FileWriter(shard_num=1)`), so
shards can be written by separate processes (workers.py) or separate pods (an
Indexed Job), and MindFormers' `MindDataset` loader picks them all up from the
directory (it collects every file whose name ends in `mindrecord`).

MindSpore is imported inside the function that needs it: the import costs
seconds, and a process that forks workers must not have its threads yet.
"""
from pathlib import Path
from typing import Any, Dict, Sequence

import numpy as np

from .seqlen import TokenRows, padded

SCHEMA = {"input_ids": {"type": "int32", "shape": [-1]}, "labels": {"type": "int32", "shape": [-1]}}
SCHEMA_DESC = "qa"
WRITE_BATCH = 2000


def shard_name(index: int, count: int) -> str:
    return f"train-{index:05d}-of-{count:05d}.mindrecord"


def _freeze_header(writer) -> None:
    """Cache the schema lookups FileWriter repeats for every row.

    MindSpore 2.9's ShardWriter asks the C++ header for the schema and blob
    fields five times per row (~30% of write time at 100k rows). The schema
    cannot change once added, so the answers are cached on the header object.
    Best effort: on another MindSpore layout the writer is left as it is.
    """
    header = getattr(writer, "_header", None)
    try:
        schema, blob_fields = header.schema, header.blob_fields
        cached = type("CachedShardHeader", (type(header),), {
            "schema": property(lambda self: schema), "blob_fields": property(lambda self: blob_fields)})
        header.__class__ = cached
    except (AttributeError, TypeError):
        pass


def write_shard(path: Path, rows: TokenRows, seq_length: int, pad_id: int, pad: bool = True) -> int:
    """Write every row of `rows` to one shard file, truncated to seq_length + 1
    tokens and, when `pad`, padded to it (bucketed batches are padded by
    MindFormers when it batches them, each to its own longest row)."""
    from mindspore.mindrecord import FileWriter

    path = Path(path)
    for stale in (path, Path(f"{path}.db")):
        if stale.exists():
            stale.unlink()
    writer = FileWriter(str(path), shard_num=1, overwrite=True)
    writer.add_schema(SCHEMA, SCHEMA_DESC)
    _freeze_header(writer)
    # Padded a batch at a time: the whole shard padded would be 4 KiB per row.
    for start in range(0, len(rows), WRITE_BATCH):
        select = np.arange(start, min(start + WRITE_BATCH, len(rows)))
        input_ids, labels = padded(rows, select, seq_length, pad_id)
        widths = np.minimum(rows.lengths[select], seq_length + 1) if not pad else None
        writer.write_raw_data([{"input_ids": input_ids[i] if pad else input_ids[i, :widths[i]],
                                "labels": labels[i] if pad else labels[i, :widths[i]]}
                               for i in range(len(select))])
    writer.commit()
    return len(rows)


def read_shards(paths: Sequence[Path]) -> Dict[str, Any]:
    """Read shards back with MindSpore's MindDataset (as MindFormers does): rows and shapes."""
    import mindspore.dataset as ds

    dataset = ds.MindDataset(dataset_files=[str(p) for p in paths], columns_list=["input_ids", "labels"],
                             shuffle=False)
    rows = []
    for item in dataset.create_dict_iterator(output_numpy=True, num_epochs=1):
        rows.append((item["input_ids"], item["labels"]))
    return {"rows": rows, "count": dataset.get_dataset_size()}
