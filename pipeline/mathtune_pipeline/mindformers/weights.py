"""The base model's weights as the MindSpore checkpoint MindFormers loads.

`spec.model.checkpoint` may be a path on the work volume (absolute, or
relative to `storage.dataPath`), an http(s):// or s3:// uri (fetched by
data/sources.py, sha256-checked against `spec.model.checkpointSha256` when
given), a `.ckpt`, a `.safetensors` file, or a directory of safetensors
shards (Hugging Face's `model-0000i-of-0000n.safetensors`).

Safetensors are converted once to a `.ckpt` under `<dataPath>/runs/.cache/
models/` (shared by the runs of a volume), streaming: the safetensors header
gives each tensor's dtype, shape and byte range, and the bytes are copied
unchanged (bfloat16 included, which numpy cannot hold) by checkpoint_io's
writer. Names in Hugging Face's Llama naming (`model.layers.0.self_attn.
q_proj.weight`) are renamed with MindFormers' own converter
(`mindformers.models.llama.convert_weight.name_replace`, what its
`convert_pt_to_ms` applies after loading through torch); rotary `inv_freq`
buffers are not weights and are dropped. Names already in MindFormers'
naming (a safetensors file MindSpore saved) are kept.
"""
import hashlib
import json
import os
import shutil
import struct
import urllib.parse
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

from mathtune_api import MathFinetuneSpec as Spec

from ..data.sources import fetch, resolve_local
from ..errors import SpecError
from . import checkpoint_io

FIELD = "spec.model.checkpoint"
REMOTE = ("http", "https", "s3")
SAFETENSORS_DTYPES = {"BF16": "BFloat16", "F16": "Float16", "F32": "Float32", "F64": "Float64", "I8": "Int8",
                      "U8": "UInt8", "I16": "Int16", "I32": "Int32", "I64": "Int64", "BOOL": "Bool"}
HF_MARKERS = (".self_attn.", ".mlp.", "embed_tokens.", ".input_layernorm.", ".post_attention_layernorm.")


def cache_root(run_dir: os.PathLike) -> Path:
    """Shared by the runs of one work volume: `<dataPath>/runs/.cache/models/`."""
    return Path(run_dir).resolve().parent / ".cache" / "models"


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def source(spec: Spec, run_dir: os.PathLike) -> Path:
    """The checkpoint as given, as a local file or directory: fetched first when it is a uri."""
    given = spec.model.checkpoint
    data_path = spec.storage.data_path
    sha256 = spec.model.checkpoint_sha256
    scheme = urllib.parse.urlparse(given).scheme.lower()
    if scheme in REMOTE:
        where = cache_root(run_dir) / _key(given, sha256)
        name = Path(urllib.parse.urlparse(given).path).name or "checkpoint"
        if (where / name).is_file():  # downloaded (and verified) by an earlier stage or run
            return where / name
        tmp = where.with_name(where.name + f".{os.getpid()}.partial")
        try:
            path = _fetch(given, data_path, tmp, sha256)
            where.mkdir(parents=True, exist_ok=True)
            path.replace(where / name)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return where / name
    path = resolve_local(given, data_path)
    if not path.exists():
        raise SpecError(FIELD, f"an existing checkpoint: a .ckpt, a .safetensors file or a directory of them "
                               f"({path} not found)")
    if sha256 and path.is_file():
        # Hashing 16 GB takes a minute: once per file version and digest, remembered on the volume.
        stat = path.stat()
        mark = cache_root(run_dir) / "verified" / _key(str(path.resolve()), stat.st_size, stat.st_mtime_ns, sha256)
        if not mark.is_file():
            _fetch(str(path), data_path, Path(run_dir) / "downloads", sha256)
            mark.parent.mkdir(parents=True, exist_ok=True)
            mark.write_text(f"{path} {sha256}\n", encoding="utf-8")
    return path


def _fetch(uri: str, data_path: str, download_dir: Path, sha256: str) -> Path:
    try:
        return fetch(uri, data_path, download_dir, field=FIELD, sha256=sha256)
    except SpecError as exc:
        if exc.field.endswith(".sha256"):  # fetch names <field minus its last part>.sha256
            raise SpecError("spec.model.checkpointSha256", exc.expected) from exc
        raise


def mindspore_checkpoint(spec: Spec, run_dir: os.PathLike) -> Path:
    """The base weights as a MindSpore .ckpt in MindFormers' naming, converted once when needed."""
    path = source(spec, run_dir)
    shards = safetensors_files(path)
    if not shards:
        if path.is_dir():
            raise SpecError(FIELD, f"a directory holding .safetensors files ({path} has none)")
        return path
    stamp = [(str(s.resolve()), s.stat().st_size, int(s.stat().st_mtime)) for s in shards]
    out = cache_root(run_dir) / _key("converted", stamp) / (path.stem + ".ckpt")
    if not out.is_file():
        convert(shards, out)
    return out


def safetensors_files(path: Path) -> List[Path]:
    if path.is_dir():
        return sorted(path.glob("*.safetensors"))
    return [path] if path.suffix == ".safetensors" else []


def read_header(path: Path) -> Tuple[int, Dict[str, Any]]:
    """(offset of the data, {name: {dtype, shape, data_offsets}}) of a safetensors file."""
    try:
        with open(path, "rb") as f:
            raw = f.read(8)
            if len(raw) != 8:
                raise ValueError("shorter than its 8-byte header length")
            (length,) = struct.unpack("<Q", raw)
            if length > 100 * 2**20:
                raise ValueError(f"a header of {length} bytes")
            header = json.loads(f.read(length))
        if not isinstance(header, dict):
            raise ValueError("the header is not a JSON object")
        header.pop("__metadata__", None)
        size = path.stat().st_size
        for name, info in header.items():
            begin, end = info["data_offsets"]
            if 8 + length + end > size:
                raise ValueError(f"{name} runs past the end of the file (truncated?)")
        return 8 + length, header
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SpecError(str(path), f"a safetensors file ({exc})") from exc


def is_hugging_face(names: List[str]) -> bool:
    return any(marker in name for name in names for marker in HF_MARKERS)


def ms_name(name: str) -> str:
    """MindFormers' own Hugging Face -> MindFormers Llama renaming."""
    from mindformers.models.llama.convert_weight import name_replace

    return name_replace(name)


def tensors(shards: List[Path]) -> Iterator[Tuple[str, Tuple[int, ...], str, Path, int, int]]:
    """(name, shape, checkpoint dtype, file, offset, size) of every tensor, file by file."""
    for shard in shards:
        start, header = read_header(shard)
        for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
            dtype = SAFETENSORS_DTYPES.get(info["dtype"])
            if dtype is None:
                raise SpecError(str(shard), f"tensors of a supported dtype ({name} is {info['dtype']})")
            begin, end = info["data_offsets"]
            yield name, tuple(info["shape"]), dtype, shard, start + begin, end - begin


def convert(shards: List[Path], out: Path) -> Path:
    """Safetensors shards -> one MindSpore checkpoint, a tensor at a time."""
    names = [t[0] for t in tensors(shards)]
    rename = ms_name if is_hugging_face(names) else (lambda n: n)
    seen: Dict[str, str] = {}
    with checkpoint_io.Writer(out) as writer:
        for name, shape, dtype, shard, offset, size in tensors(shards):
            if name.endswith("rotary_emb.inv_freq"):
                continue
            target = rename(name)
            if target in seen:
                raise SpecError(str(shard), f"one tensor per name ({name} and {seen[target]} both become {target})")
            seen[target] = name
            with open(shard, "rb") as f:
                record = checkpoint_io.Record(target, shape, dtype, offset, size)
                writer.add_raw(target, shape if shape else (), dtype, f, [record])
    checkpoint_io.check(out)
    print(f"base model: {len(seen)} tensors converted from {len(shards)} safetensors file(s) to {out}", flush=True)
    return out
