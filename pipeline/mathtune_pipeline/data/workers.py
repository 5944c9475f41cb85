"""The tokenize stage's worker processes: tokenize row ranges, then write shards.

Both jobs are CPU-bound Python-and-native work, so they are spread over
processes, one per CPU. Tokenizing forks (parallel.fork_map) after the parent
has loaded the tokenizer and read the file, so each process inherits the lines
(copy-on-write), parses and tokenizes its own range, and sends back only
compact token arrays. tiktoken's own threaded batch encoder was measured ~3x
slower than one thread per process on these short rows (GIL hand-offs per row).
The shard writers are started before all that, so MindSpore's import overlaps it.
"""
import json
import multiprocessing
import os
from pathlib import Path
from typing import Any, List, Sequence, Tuple

import numpy as np

from ..errors import SpecError
from .mindrecord import write_shard
from .parallel import SHARED, fork_map
from .seqlen import TokenRows, build_token_rows

def _tokenize_range(bounds: Tuple[int, int]) -> TokenRows:
    start, stop = bounds
    tok = SHARED["tokenizer"]
    prompts, responses = parse_prepared(SHARED["lines"][start:stop], SHARED["source"], start)
    return build_token_rows(tok.encode_batch(prompts, 1), tok.encode_batch(responses, 1), tok.bos_id, tok.eos_id)


def parse_prepared(lines: Sequence[bytes], source: str, first: int = 0) -> Tuple[List[str], List[str]]:
    """Prompts and responses of prepared JSON lines (one parse per slice)."""
    try:
        rows = json.loads(b"[" + b",".join(lines) + b"]")
        return [r["prompt"] for r in rows], [r["response"] for r in rows]
    except (ValueError, KeyError, TypeError) as exc:
        raise SpecError(source, f"JSON lines with prompt and response (rows {first + 1}..{first + len(lines)}: "
                                f"{exc})") from None


def _write(task: Tuple[str, TokenRows, int, int, bool]) -> int:
    path, rows, seq_length, pad_id, pad = task
    return write_shard(Path(path), rows, seq_length, pad_id, pad)


def concat(parts: Sequence[TokenRows]) -> TokenRows:
    lengths = np.concatenate([p.lengths for p in parts]) if parts else np.zeros(0, np.int64)
    starts = np.zeros(len(lengths), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    ids = np.concatenate([p.ids for p in parts]) if parts else np.zeros(0, np.int32)
    return TokenRows(ids, starts, lengths, np.concatenate([p.prompt_lengths for p in parts]) if parts else lengths)


def _writer_main(conn) -> None:
    """A writer process: import MindSpore at once, then write the shards it is sent."""
    try:
        import mindspore.mindrecord  # noqa: F401 - the seconds this takes overlap the parent's work
        tasks = conn.recv()
    except (EOFError, OSError):
        return   # the parent gave up before sending work (an error upstream): nothing to do
    try:
        reply = ("ok", [_write(t) for t in tasks])
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises it
        reply = ("error", f"{type(exc).__name__}: {exc}")
    try:
        conn.send(reply)
    except OSError:
        pass
    finally:
        conn.close()


class Workers:
    """Writer processes started first (they spend their first seconds importing
    MindSpore while the parent loads the tokenizer and reads the rows), and a
    pool forked later for tokenizing, which inherits the rows.

    The writers are plain processes with a pipe each, not a Pool: a Pool runs
    handler threads in the parent, and the parent forks again afterwards."""

    def __init__(self, writers: int, tokenizers: int):
        self.processes = max(1, tokenizers)
        self._context = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
        self._writers = []
        for _ in range(max(1, writers)):
            parent_end, child_end = self._context.Pipe()
            proc = self._context.Process(target=_writer_main, args=(child_end,), daemon=True)
            proc.start()
            child_end.close()
            self._writers.append((proc, parent_end))

    def tokenize(self, tokenizer: Any, lines: List[bytes], source: str) -> TokenRows:
        """Token rows of prepared JSON lines; each process parses and tokenizes one range."""
        step = -(-len(lines) // self.processes)
        ranges = [(s, min(s + step, len(lines))) for s in range(0, len(lines), step)]
        return concat(fork_map(_tokenize_range, ranges, self.processes,
                               {"tokenizer": tokenizer, "lines": lines, "source": source}))

    def write(self, tasks: Sequence[Tuple[str, TokenRows, int, int, bool]]) -> List[int]:
        """Shard i goes to writer i mod N; returns the rows written per shard, in shard order."""
        plan = [list(range(w, len(tasks), len(self._writers))) for w in range(len(self._writers))]
        for (proc, conn), indices in zip(self._writers, plan):
            try:
                conn.send([tasks[i] for i in indices])
            except OSError:
                # A writer that died (say, importing MindSpore failed) closed
                # its end: say that, not "Broken pipe".
                proc.join(5)
                raise RuntimeError(f"a shard writer process died (exit code {proc.exitcode}); "
                                   f"its error is in the log above") from None
        written = [0] * len(tasks)
        for (proc, conn), indices in zip(self._writers, plan):
            try:
                status, value = conn.recv()
            except EOFError:
                raise RuntimeError(f"a shard writer process died (exit code {proc.exitcode})") from None
            if status != "ok":
                raise RuntimeError(f"writing shards {indices}: {value}")
            for i, n in zip(indices, value):
                written[i] = n
        return written

    def close(self, abandon: bool = False) -> None:
        """Wait for the writers to exit; `abandon` (an error upstream) stops them at once."""
        for proc, conn in self._writers:
            conn.close()
            if abandon:
                proc.terminate()
            proc.join(timeout=60)
            if proc.is_alive():
                proc.kill()
                proc.join()
        self._writers = []

    def __enter__(self) -> "Workers":
        return self

    def __exit__(self, exc_type, *_: Any) -> None:
        self.close(abandon=exc_type is not None)
