"""Safetensors files written a tensor at a time, sharded the way Hugging Face shards.

A safetensors file is an 8-byte little-endian header length, a JSON header
(each tensor's dtype, shape and byte range) and the tensors' bytes. The
header needs every tensor's size up front, which a MindSpore checkpoint's
value headers give without reading any tensor (checkpoint_io.grouped), so
the bytes are copied from the checkpoint in COPY_BYTES pieces, unchanged
(bfloat16 included). Host memory holds one piece, never the model:
`transformers`' save_pretrained holds the whole state dict.

Shards follow Hugging Face's convention: one file `model.safetensors` when
the model fits in `max_shard_bytes`, else `model-0000i-of-0000n.safetensors`
with `model.safetensors.index.json` ({"metadata": {"total_size"},
"weight_map": {name: file}}). Each file is written under a temporary name,
hashed as it is written, and renamed when complete.
"""
import hashlib
import json
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Dict, List, Sequence, Tuple

from ..artifacts import sha256_file
from ..mindformers import checkpoint_io, weights

# MindSpore's type name -> safetensors' dtype: the import's map (weights.py), read the other way.
SAFETENSORS_DTYPE = {ms: st for st, ms in weights.SAFETENSORS_DTYPES.items()}


@dataclass
class Entry:
    """One tensor to write: its new name, and where its bytes are in a checkpoint."""
    name: str
    dims: Tuple[int, ...]
    dtype: str                        # MindSpore's type name
    source: Path
    parts: List[checkpoint_io.Record]

    @property
    def size(self) -> int:
        return sum(p.size for p in self.parts)


@dataclass
class Written:
    path: Path
    bytes: int
    sha256: str

    @classmethod
    def of(cls, path: Path) -> "Written":
        """A file written otherwise (a config, an index), measured after the fact."""
        return cls(path, path.stat().st_size, sha256_file(path))


def header(entries: Sequence[Entry], metadata: Dict[str, str]) -> bytes:
    """The header of a file holding `entries` in order, padded to 8 bytes as safetensors' writer does."""
    layout: Dict[str, object] = {"__metadata__": metadata}
    offset = 0
    for e in entries:
        if e.dtype not in SAFETENSORS_DTYPE:
            raise ValueError(f"{e.name}: no safetensors dtype for {e.dtype}")
        layout[e.name] = {"dtype": SAFETENSORS_DTYPE[e.dtype], "shape": list(e.dims),
                          "data_offsets": [offset, offset + e.size]}
        offset += e.size
    raw = json.dumps(layout, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw


def write_file(entries: Sequence[Entry], path: Path, metadata: Dict[str, str]) -> Written:
    """One safetensors file, streamed from the checkpoints the entries point into."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
    digest = hashlib.sha256()
    sources: Dict[Path, BinaryIO] = {}
    try:
        with open(tmp, "wb") as out:
            head = header(entries, metadata)
            out.write(head)
            digest.update(head)
            for e in entries:
                source = sources.get(e.source) or sources.setdefault(e.source, open(e.source, "rb"))
                for part in e.parts:
                    source.seek(part.offset)
                    for start in range(0, part.size, checkpoint_io.COPY_BYTES):
                        piece = source.read(min(checkpoint_io.COPY_BYTES, part.size - start))
                        if not piece:
                            raise ValueError(f"{e.source} ends inside {e.name}")
                        out.write(piece)
                        digest.update(piece)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        for f in sources.values():
            f.close()
    return Written(path, path.stat().st_size, digest.hexdigest())


def shard(entries: Sequence[Entry], max_shard_bytes: int) -> List[List[Entry]]:
    """In order, a new shard whenever the next tensor would not fit (a tensor larger
    than the limit gets a shard of its own), as transformers' shard_checkpoint does."""
    shards: List[List[Entry]] = [[]]
    used = 0
    for e in entries:
        if shards[-1] and used + e.size > max_shard_bytes:
            shards.append([])
            used = 0
        shards[-1].append(e)
        used += e.size
    return shards


def write_sharded(entries: Sequence[Entry], out_dir: Path, max_shard_bytes: int,
                  metadata: Dict[str, str]) -> List[Written]:
    """The model as Hugging Face lays it out: model.safetensors, or shards and their index."""
    groups = shard(entries, max_shard_bytes)
    if len(groups) == 1:
        return [write_file(groups[0], out_dir / "model.safetensors", metadata)]
    width = max(5, int(math.log10(len(groups))) + 1)
    written, weight_map = [], {}
    for i, group in enumerate(groups, 1):
        name = f"model-{i:0{width}d}-of-{len(groups):0{width}d}.safetensors"
        written.append(write_file(group, out_dir / name, metadata))
        weight_map.update({e.name: name for e in group})
    index = out_dir / "model.safetensors.index.json"
    index.write_text(json.dumps({"metadata": {"total_size": sum(e.size for e in entries)},
                                 "weight_map": dict(sorted(weight_map.items()))}, indent=2) + "\n",
                     encoding="utf-8")
    return written + [Written.of(index)]


def entries(checkpoint: Path, rename) -> List[Entry]:
    """Every tensor of a MindSpore checkpoint `rename` keeps (it returns None to leave one out),
    under its new name, in the checkpoint's order."""
    out = []
    for name, dims, dtype, parts in checkpoint_io.grouped(checkpoint):
        new = rename(name)
        if new is not None:
            out.append(Entry(new, tuple(dims), dtype, Path(checkpoint), list(parts)))
    return out
