"""The order bucketed rows are written in (pure: no MindSpore)."""
import numpy as np

from mathtune_pipeline.data import bucketing


def test_every_row_once_global_batches_of_similar_length_in_random_order():
    lengths = np.random.default_rng(1).integers(10, 200, 1000)
    order = bucketing.order(lengths, batch_size=8, data_parallel=2, seed=3)
    assert sorted(order.tolist()) == list(range(1000))
    full = [lengths[order[i:i + 16]] for i in range(0, 992, 16)]
    assert max(np.ptp(b) for b in full) <= 8, "each global batch spans a narrow band of lengths"
    firsts = [int(b.min()) for b in full]
    assert firsts != sorted(firsts), "the batches themselves are shuffled"
    assert (bucketing.order(lengths, 8, 2, 3) == order).all() and not (bucketing.order(lengths, 8, 2, 4) == order).all()


def test_the_rows_a_partial_batch_drops_are_random_not_the_longest():
    lengths = np.arange(1, 101)          # row i has length i + 1
    order = bucketing.order(lengths, batch_size=16, data_parallel=1, seed=0)
    dropped = lengths[order[96:]]        # 100 rows, batches of 16: the last 4 are never trained
    assert len(dropped) == 4 and sorted(dropped.tolist()) != [97, 98, 99, 100]


def test_computed_tokens_per_rank_and_shared():
    lengths = np.array([10, 12, 30, 31, 9])   # the fifth row is the dropped partial batch
    per_rank = bucketing.computed_tokens(lengths, batch_size=2, data_parallel=2, multiple=8)
    # rank 0 gets rows 0 and 2 (width 33), rank 1 rows 1 and 3 (width 33)
    assert per_rank == {"computed": 4 * 33, "real": 10 + 12 + 30 + 31}
    shared = bucketing.computed_tokens(np.array([10, 12, 14, 15]), batch_size=2, data_parallel=2, multiple=8,
                                       per_rank=False)
    assert shared == {"computed": 4 * 17, "real": 51}
    assert bucketing.bucket_width(9, 8) == 9 and bucketing.bucket_width(10, 8) == 17
