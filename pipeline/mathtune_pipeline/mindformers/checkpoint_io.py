"""MindSpore checkpoints: whole as {name: numpy array}, or streamed tensor by tensor.

A `.ckpt` file is a run of serialized `Checkpoint` protobuf messages, each
holding one `Value` (`tag` = the parameter's name, `tensor` = dims, type
name, raw bytes); MindSpore's `save_checkpoint` writes a tensor larger than
512 MiB as several consecutive values of the same tag, and its loader joins
them (`mindspore/train/serialization.py`: `_write_parameter_bytes_data`,
`_load_ckpt_into_param_dict`). A file saved with `crc_check` ends in
`crc_num` + 10 bytes. `ms.load_checkpoint` reads the whole file into one
bytes object and parses it at once, so loading an 8B model costs about two
copies of it in host memory before any tensor is made.

`records` and `tensors` read the same format one value at a time (a value's
header first, its bytes only when wanted), and `Writer` appends values the
way `save_checkpoint` does: what a merge needs in memory is one tensor, not
the model.
"""
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Dict, Iterator, List, Optional, Tuple, Union

import numpy as np

from ..errors import SpecError

PathLike = Union[str, Path]
SLICE_BYTES = 512 * 1024 * 1024  # MindSpore's SLICE_SIZE (KiB) x 1024
COPY_BYTES = 64 * 1024 * 1024  # tensors copied unchanged pass through in pieces of this size
_CRC_TRAILER = 17  # b"crc_num" + 10 bytes
_NUMPY = {"Int8": np.int8, "UInt8": np.uint8, "Int16": np.int16, "UInt16": np.uint16, "Int32": np.int32,
          "UInt32": np.uint32, "Int64": np.int64, "UInt64": np.uint64, "Float16": np.float16,
          "Float32": np.float32, "Float64": np.float64, "Bool": np.bool_}


def read(path: PathLike) -> Dict[str, np.ndarray]:
    """The whole checkpoint in memory (tests and small files; bfloat16 as float32)."""
    return {t.name: t.array() for t in tensors(path)}


def write(params: Dict[str, np.ndarray], path: PathLike, dtypes: Optional[Dict[str, str]] = None) -> Path:
    """Atomically: a crash never leaves a truncated checkpoint under the final name.
    `dtypes` maps a name to the checkpoint type name to store it as (e.g. "BFloat16")."""
    with Writer(path) as out:
        for name, value in params.items():
            out.add_array(name, value, (dtypes or {}).get(name))
    return Path(path)


@dataclass
class Record:
    """One serialized value: a tensor, or one slice of a large one."""
    name: str
    dims: Tuple[int, ...]
    dtype: str             # MindSpore's type name: Float32, BFloat16, ...
    offset: int            # of the tensor bytes in the file
    size: int


@dataclass
class Tensor:
    """A whole tensor, its slices' bytes joined."""
    name: str
    dims: Tuple[int, ...]
    dtype: str
    data: bytes

    def array(self, bf16_as=np.float32) -> np.ndarray:
        return to_numpy(self.dtype, self.data, self.dims, bf16_as)


def _bad(path: PathLike, why: str) -> SpecError:
    return SpecError(str(path), f"a complete MindSpore checkpoint (.ckpt protobuf) was expected: {why}")


def _varint(f: BinaryIO, path: PathLike) -> int:
    shift = value = 0
    while True:
        b = f.read(1)
        if not b:
            raise _bad(path, f"truncated at byte {f.tell()}")
        value |= (b[0] & 0x7F) << shift
        if not b[0] & 0x80:
            return value
        shift += 7
        if shift > 63:
            raise _bad(path, f"malformed length at byte {f.tell()}")


def _key(f: BinaryIO, path: PathLike) -> Tuple[int, int]:
    key = _varint(f, path)
    return key >> 3, key & 7


def _read_exact(f: BinaryIO, n: int, path: PathLike) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise _bad(path, f"truncated at byte {f.tell()}")
    return data


def _payload_end(f: BinaryIO, path: PathLike) -> int:
    size = os.fstat(f.fileno()).st_size
    if size >= _CRC_TRAILER:
        f.seek(size - _CRC_TRAILER)
        if f.read(7) == b"crc_num":
            size -= _CRC_TRAILER
    f.seek(0)
    return size


def records(path: PathLike) -> Iterator[Record]:
    """Every value's header, in file order, without reading the tensor bytes.

    Raises SpecError naming the file if it is truncated or not a checkpoint."""
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise SpecError(str(path), f"a readable MindSpore checkpoint ({exc.strerror})") from exc
    with f:
        end = _payload_end(f, path)
        if end == 0:
            raise _bad(path, "the file is empty")
        while f.tell() < end:
            field, wire = _key(f, path)
            if (field, wire) != (1, 2):
                raise _bad(path, f"unexpected field {field} at byte {f.tell()}")
            value_end = _varint(f, path) + f.tell()
            if value_end > end:
                raise _bad(path, f"truncated: a value runs to byte {value_end}, the file ends at {end}")
            name, dims, dtype, offset, size = None, [], None, -1, -1
            while f.tell() < value_end:
                field, wire = _key(f, path)
                if field == 1 and wire == 2:
                    name = _read_exact(f, _varint(f, path), path).decode("utf-8")
                elif field == 2 and wire == 2:
                    tensor_end = _varint(f, path) + f.tell()
                    while f.tell() < tensor_end:
                        tfield, twire = _key(f, path)
                        if tfield == 1 and twire == 0:
                            dims.append(_varint(f, path))
                        elif tfield == 1 and twire == 2:  # packed dims
                            packed = io.BytesIO(_read_exact(f, _varint(f, path), path))
                            while packed.tell() < len(packed.getbuffer()):
                                dims.append(_varint(packed, path))
                        elif tfield == 2 and twire == 2:
                            dtype = _read_exact(f, _varint(f, path), path).decode("ascii")
                        elif tfield == 3 and twire == 2:
                            size = _varint(f, path)
                            offset = f.tell()
                            f.seek(size, os.SEEK_CUR)
                        else:
                            raise _bad(path, f"unexpected tensor field {tfield} at byte {f.tell()}")
                elif field == 3:
                    raise _bad(path, f"{name}: map parameters (embedding tables) are not supported")
                else:
                    raise _bad(path, f"unexpected value field {field} at byte {f.tell()}")
            if f.tell() != value_end or name is None or dtype is None or offset < 0:
                raise _bad(path, f"malformed value {name!r} ending at byte {value_end}")
            dims_t = tuple(dims) if dims != [0] else ()
            yield Record(name, dims_t, dtype, offset, size)


def check(path: PathLike) -> int:
    """The number of values in a checkpoint, every header read (no tensor
    bytes): a truncated or foreign file is a SpecError naming it, before a
    model is built or a worker started for it."""
    return sum(1 for _ in records(path))


def _read_at(f: BinaryIO, record: Record, path: PathLike) -> bytes:
    f.seek(record.offset)
    return _read_exact(f, record.size, path)


def tensors(path: PathLike, choose: Optional[Callable[[str], bool]] = None) -> Iterator[Tensor]:
    """Whole tensors in file order (slices joined), only those `choose` keeps;
    one tensor in memory at a time."""
    with open(path, "rb") as f:
        for name, dims, dtype, parts in grouped(path):
            if choose is not None and not choose(name):
                continue
            yield Tensor(name, dims, dtype, b"".join(_read_at(f, r, path) for r in parts))


def grouped(path: PathLike) -> Iterator[Tuple[str, Tuple[int, ...], str, List[Record]]]:
    """(name, dims, dtype, its records) per tensor: consecutive values of one tag."""
    current: List[Record] = []
    for record in records(path):
        if current and record.name != current[0].name:
            yield current[0].name, current[0].dims, current[0].dtype, current
            current = []
        current.append(record)
    if current:
        yield current[0].name, current[0].dims, current[0].dtype, current


def to_numpy(dtype: str, data: bytes, dims: Tuple[int, ...], bf16_as=np.float32) -> np.ndarray:
    if dtype == "BFloat16":  # numpy has no bfloat16: its bits are a float32's upper half
        return (np.frombuffer(data, np.uint16).astype(np.uint32) << 16).view(np.float32).reshape(dims).astype(bf16_as)
    if dtype not in _NUMPY:
        raise ValueError(f"checkpoint type {dtype} is not supported here")
    return np.frombuffer(data, _NUMPY[dtype]).reshape(dims).copy()


def from_numpy(array: np.ndarray, dtype: Optional[str] = None) -> Tuple[str, bytes]:
    """(type name, bytes) of `array` stored as `dtype` (default: its own type).
    bfloat16 is rounded by MindSpore's own cast, as save_checkpoint would."""
    if dtype is None:
        dtype = next(k for k, v in _NUMPY.items() if np.dtype(v) == array.dtype)
    if dtype == "BFloat16":
        import mindspore as ms

        return dtype, ms.Tensor(np.ascontiguousarray(array, np.float32)).astype(ms.bfloat16).asnumpy().tobytes()
    return dtype, np.ascontiguousarray(array, _NUMPY[dtype]).tobytes()


def _len_prefixed(field: int, payload_len: int) -> bytes:
    return _encode_varint((field << 3) | 2) + _encode_varint(payload_len)


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


class Writer:
    """Appends tensors to a new checkpoint as save_checkpoint writes them
    (one value per 512 MiB slice); the file appears under its name only when
    closed without error."""

    def __init__(self, path: PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.path.with_name(f".tmp-{os.getpid()}-{self.path.name}")  # two stages may convert at once
        self._f: BinaryIO = open(self.tmp, "wb")
        self.count = 0

    def add(self, name: str, dims: Tuple[int, ...], dtype: str, data: bytes) -> None:
        for start in range(0, max(len(data), 1), SLICE_BYTES):
            self._value(name, dims, dtype, memoryview(data)[start:start + SLICE_BYTES])
        self.count += 1

    def add_array(self, name: str, array: np.ndarray, dtype: Optional[str] = None) -> None:
        dtype, data = from_numpy(np.asarray(array), dtype)
        self.add(name, tuple(np.shape(array)), dtype, data)

    def add_raw(self, name: str, dims: Tuple[int, ...], dtype: str, source: BinaryIO, parts: List[Record]) -> None:
        """Copy a tensor's values from another checkpoint as they are, COPY_BYTES at a time."""
        for record in parts:
            self._header(name, dims, dtype, record.size)
            source.seek(record.offset)
            for start in range(0, record.size, COPY_BYTES):
                self._f.write(_read_exact(source, min(COPY_BYTES, record.size - start), source.name))
        self.count += 1

    def _value(self, name: str, dims: Tuple[int, ...], dtype: str, content: memoryview) -> None:
        self._header(name, dims, dtype, len(content))
        self._f.write(content)

    def _header(self, name: str, dims: Tuple[int, ...], dtype: str, content_size: int) -> None:
        """Everything of one value before its tensor bytes."""
        tag = name.encode("utf-8")
        kind = dtype.encode("ascii")
        tensor_head = b"".join(_encode_varint(0x08) + _encode_varint(d) for d in (dims or (0,)))
        tensor_head += _len_prefixed(2, len(kind)) + kind + _len_prefixed(3, content_size)
        tensor_len = len(tensor_head) + content_size
        value_head = _len_prefixed(1, len(tag)) + tag + _len_prefixed(2, tensor_len)
        self._f.write(_len_prefixed(1, len(value_head) + tensor_len) + value_head + tensor_head)

    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._f.close()
        if exc_type is None:
            self.tmp.replace(self.path)
        else:
            self.tmp.unlink(missing_ok=True)
