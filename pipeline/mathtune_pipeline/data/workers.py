"""The tokenize stage's worker processes: tokenize row ranges, then write shards.

Both jobs are CPU-bound Python-and-native work, so they are spread over
processes, one per CPU. The pool is forked after the parent has loaded the
tokenizer and read the rows, so each worker inherits them (copy-on-write)
instead of receiving them through a pipe; only the compact token arrays travel
back. tiktoken's own threaded batch encoder was measured ~3x slower than one
thread per process on these short rows (GIL hand-offs per row).
"""
import multiprocessing
import os
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from .mindrecord import write_shard
from .seqlen import TokenRows, build_token_rows

# What the forked workers inherit: set by the parent just before the fork.
_JOB: dict = {}


def _tokenize_range(bounds: Tuple[int, int]) -> TokenRows:
    start, stop = bounds
    tok = _JOB["tokenizer"]
    prompts = tok.encode_batch(_JOB["prompts"][start:stop], 1)
    responses = tok.encode_batch(_JOB["responses"][start:stop], 1)
    return build_token_rows(prompts, responses, tok.bos_id, tok.eos_id)


def _write(task: Tuple[str, TokenRows, int, int]) -> int:
    path, rows, seq_length, pad_id = task
    return write_shard(Path(path), rows, seq_length, pad_id)


def concat(parts: Sequence[TokenRows]) -> TokenRows:
    lengths = np.concatenate([p.lengths for p in parts]) if parts else np.zeros(0, np.int64)
    starts = np.zeros(len(lengths), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    ids = np.concatenate([p.ids for p in parts]) if parts else np.zeros(0, np.int32)
    return TokenRows(ids, starts, lengths, np.concatenate([p.prompt_lengths for p in parts]) if parts else lengths)


class Workers:
    def __init__(self, processes: int, tokenizer: Any, prompts: List[str], responses: List[str]):
        _JOB.update(tokenizer=tokenizer, prompts=prompts, responses=responses)
        self.processes = max(1, processes)
        self.rows = len(prompts)
        context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
        self._pool: Optional[Any] = context.Pool(self.processes) if self.processes > 1 else None

    def tokenize(self, chunk_rows: int = 5000) -> TokenRows:
        ranges = [(s, min(s + chunk_rows, self.rows)) for s in range(0, self.rows, chunk_rows)]
        parts = self._pool.map(_tokenize_range, ranges, chunksize=1) if self._pool else list(map(_tokenize_range, ranges))
        return concat(parts)

    def write(self, tasks: Sequence[Tuple[str, TokenRows, int, int]]) -> List[int]:
        _JOB.clear()   # the rows' text is no longer needed
        if self._pool is None or len(tasks) == 1:
            return [_write(t) for t in tasks] if self._pool is None else self._pool.map(_write, tasks, chunksize=1)
        return self._pool.map(_write, tasks, chunksize=1)

    def __enter__(self) -> "Workers":
        return self

    def __exit__(self, exc_type, *_: Any) -> None:
        _JOB.clear()
        if self._pool is not None:
            if exc_type is None:
                self._pool.close()
            else:
                self._pool.terminate()
            self._pool.join()
