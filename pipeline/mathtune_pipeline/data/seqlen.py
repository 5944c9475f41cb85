"""Rows of MindFormers' qa schema: layout, `seq_length` choice, histogram, padding share.

A row is seq_length + 1 tokens (the model shifts inputs and labels by one):
`BOS prompt response EOS PAD...`; labels equal input_ids over `response EOS`
and are -100 over BOS, the prompt and the padding. The prompt length is known
exactly because prompt and response were tokenized apart (MindFormers'
llama_preprocess re-tokenizes and guesses it as "length - 3").
"""
import math
from dataclasses import dataclass
from typing import Any, Dict, Union

import numpy as np

from ..errors import SpecError

IGNORE = -100
MULTIPLE = 64
HISTOGRAM_BIN = 32


@dataclass
class TokenRows:
    """Token ids of every row, flat: row i is ids[starts[i]:starts[i] + lengths[i]]."""
    ids: np.ndarray          # int32, BOS + prompt + response + EOS of every row, concatenated
    starts: np.ndarray       # int64
    lengths: np.ndarray      # int64, full length before any truncation
    prompt_lengths: np.ndarray  # int64, BOS + prompt: the masked head of each row

    def __len__(self) -> int:
        return len(self.lengths)

    def slice(self, start: int, stop: int) -> "TokenRows":
        """Rows start..stop as their own compact TokenRows (what one shard's writer needs)."""
        lo = int(self.starts[start]) if stop > start else 0
        hi = int(self.starts[stop - 1] + self.lengths[stop - 1]) if stop > start else 0
        return TokenRows(self.ids[lo:hi].copy(), self.starts[start:stop] - lo, self.lengths[start:stop].copy(),
                         self.prompt_lengths[start:stop].copy())


def build_token_rows(prompt_ids, response_ids, bos: int, eos: int) -> TokenRows:
    p_len = np.fromiter((len(p) for p in prompt_ids), dtype=np.int64, count=len(prompt_ids))
    r_len = np.fromiter((len(r) for r in response_ids), dtype=np.int64, count=len(response_ids))
    lengths = p_len + r_len + 2
    flat = []
    for p, r in zip(prompt_ids, response_ids):
        flat.append(bos)
        flat.extend(p)
        flat.extend(r)
        flat.append(eos)
    ids = np.asarray(flat, dtype=np.int32)
    starts = np.zeros(len(lengths), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    return TokenRows(ids, starts, lengths, p_len + 1)


def choose_seq_length(lengths: np.ndarray, setting: Union[int, str], percentile: float = 100) -> int:
    """`seq_length` for a number, or for `auto`: the smallest multiple of 64 whose
    rows (seq_length + 1 tokens) fit every row, or the chosen percentile of rows."""
    if isinstance(setting, bool) or not (isinstance(setting, int) or setting == "auto"):
        raise SpecError("spec.data.seqLength", f"a whole number of tokens or \"auto\" (got {setting!r})")
    if setting != "auto":
        if setting < 2:
            raise SpecError("spec.data.seqLength", "at least 2 tokens (BOS and one label)")
        return setting
    if isinstance(percentile, bool) or not isinstance(percentile, (int, float)) or not 0 < percentile <= 100:
        raise SpecError("spec.data.seqLengthPercentile", "a number in (0, 100]")
    if len(lengths) == 0:
        return MULTIPLE
    need = float(np.percentile(lengths, percentile, method="inverted_cdf")) - 1
    return max(MULTIPLE, int(math.ceil(need / MULTIPLE)) * MULTIPLE)


def length_stats(rows: TokenRows, seq_length: int) -> Dict[str, Any]:
    width = seq_length + 1
    kept = np.minimum(rows.lengths, width)
    truncated = int(np.count_nonzero(rows.lengths > width))
    no_labels = int(np.count_nonzero(rows.prompt_lengths >= width))
    hist_edges = np.arange(0, int(rows.lengths.max(initial=0)) + HISTOGRAM_BIN, HISTOGRAM_BIN)
    counts, _ = np.histogram(rows.lengths, bins=hist_edges) if len(rows) else ([], None)
    histogram = {f"{int(lo)}-{int(lo) + HISTOGRAM_BIN - 1}": int(n)
                 for lo, n in zip(hist_edges[:-1], counts) if n}
    total = len(rows) * width
    return {
        "rows": len(rows),
        "seqLength": seq_length,
        "truncated": truncated,
        "noLabels": no_labels,
        "tokens": int(kept.sum()),
        "paddingShare": round(1 - float(kept.sum()) / total, 4) if total else 0.0,
        "lengthPercentiles": {p: int(np.percentile(rows.lengths, q, method="inverted_cdf")) if len(rows) else 0
                              for p, q in (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))},
        "lengthHistogram": histogram,
        "histogramBinTokens": HISTOGRAM_BIN,
    }


def padded(rows: TokenRows, select: np.ndarray, seq_length: int, pad: int):
    """(input_ids, labels) int32 arrays of shape (len(select), seq_length + 1), built without a Python loop."""
    width = seq_length + 1
    lengths = np.minimum(rows.lengths[select], width)
    starts = rows.starts[select]
    n = len(select)
    inputs = np.full((n, width), pad, dtype=np.int32)
    position = np.arange(width)
    inside = position[None, :] < lengths[:, None]
    # Source index of every kept token, row by row in order.
    row_of = np.repeat(np.arange(n), lengths)
    offset = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    inputs[inside] = rows.ids[starts[row_of] + offset]
    answer = inside & (position[None, :] >= rows.prompt_lengths[select][:, None])
    labels = np.where(answer, inputs, np.int32(IGNORE)).astype(np.int32)
    return inputs, labels
