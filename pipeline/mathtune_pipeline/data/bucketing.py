"""Length-bucketed batches: each training step pads only to its own longest row.

MindFormers 1.9 pads a batch to the longest row in it when the dataset sets
`dynamic_batch` (dataset/causal_language_model_dataset.py, `dyn_batch_wrapper`:
the length is rounded to `k * divisor + remainder`), and the Trainer then
declares the sequence axis symbolic, `Symbol(divisor, remainder)`
(trainer/base_trainer.py, "if config.train_dataset.dynamic_batch"), for a
model built with `is_dynamic: True`. That alone pads a randomly mixed batch to
its one long row; what saves the tokens is the order the rows are written in,
which is what this module decides.

The order: rows sorted by length (ties broken at random, seeded), cut into
global batches (batchSize x dataParallel consecutive rows), and the global
batches shuffled (seeded). MindDataset without shuffling deals rows to the
data-parallel ranks in turn (row i to rank i mod dp), so the rows of one
global batch are exactly the rows of one step on every rank, each rank's
batch padded to its own longest. Every epoch visits the batches in that same
order (the loader must not shuffle rows, or the buckets are lost).

Pure: numpy only, so the tokenize stage, the benchmark and the tests share it.
"""
from typing import Dict

import numpy as np

# The rows hold seq_length + 1 tokens (the model shifts inputs and labels by
# one), so a bucket's width is a multiple of `multiple`, plus one.
REMAINDER = 1


def bucket_width(longest: int, multiple: int) -> int:
    """The width MindFormers pads a batch whose longest row is `longest` to
    (its `dyn_batch_wrapper` formula with remainder 1)."""
    return ((longest - REMAINDER - 1) // multiple + 1) * multiple + REMAINDER


def order(lengths: np.ndarray, batch_size: int, data_parallel: int, seed: int) -> np.ndarray:
    """The permutation of rows to write: similar lengths share a global batch,
    the global batches in a seeded random order."""
    n = len(lengths)
    rng = np.random.default_rng(seed)
    group = batch_size * data_parallel
    shuffled = rng.permutation(n)
    # MindFormers drops a last, partial global batch (drop_remainder). Its
    # rows are drawn at random and written last, so the rows never trained
    # are a random few, as with shuffled padded batches, not the longest.
    left_over = n % group
    kept, dropped = shuffled[left_over:], shuffled[:left_over]
    by_length = kept[np.argsort(np.asarray(lengths)[kept], kind="stable")]
    batches = [by_length[i:i + group] for i in range(0, len(by_length), group)]
    pieces = [batches[i] for i in rng.permutation(len(batches))] + [dropped]
    return np.concatenate(pieces).astype(np.int64)


def computed_tokens(lengths_in_order: np.ndarray, batch_size: int, data_parallel: int, multiple: int,
                    per_rank: bool = True) -> Dict[str, int]:
    """What the NPUs compute for rows written in this order: each rank's
    batch padded to its bucket width (`per_rank`, data parallel), or the
    whole global batch to one width (semi-auto parallel reads the full batch
    on every rank); the rows of a trailing partial batch, which MindFormers
    drops, count on neither side."""
    lengths = np.asarray(lengths_in_order, dtype=np.int64)
    group = batch_size * data_parallel
    used = (len(lengths) // group) * group
    computed = real = 0
    for start in range(0, used, group):
        chunk = lengths[start:start + group]
        for batch in ([chunk[rank::data_parallel] for rank in range(data_parallel)] if per_rank else [chunk]):
            computed += bucket_width(int(batch.max()), multiple) * len(batch)
            real += int(batch.sum())
    return {"computed": int(computed), "real": int(real)}
