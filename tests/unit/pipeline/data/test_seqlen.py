"""Row layout and seq_length choice, on hand-made token rows."""
import numpy as np
import pytest

from mathtune_pipeline.data.seqlen import IGNORE, build_token_rows, choose_seq_length, length_stats, padded
from mathtune_pipeline.errors import SpecError

BOS, EOS, PAD = 100, 101, 102


def rows():
    return build_token_rows([[1, 2, 3], [4], [5, 6, 7, 8, 9, 10]], [[11, 12], [13, 14, 15], [16]], BOS, EOS)


def test_layout_bos_prompt_response_eos_pad_and_exact_masks():
    inputs, labels = padded(rows(), np.arange(3), seq_length=8, pad=PAD)
    assert inputs.shape == labels.shape == (3, 9) and inputs.dtype == labels.dtype == np.int32
    assert inputs[0].tolist() == [BOS, 1, 2, 3, 11, 12, EOS, PAD, PAD]
    assert labels[0].tolist() == [IGNORE] * 4 + [11, 12, EOS] + [IGNORE] * 2
    assert labels[1].tolist() == [IGNORE, IGNORE, 13, 14, 15, EOS] + [IGNORE] * 3
    # Row 2 is 9 tokens: exactly fits seq_length + 1.
    assert inputs[2].tolist() == [BOS, 5, 6, 7, 8, 9, 10, 16, EOS]
    assert labels[2].tolist() == [IGNORE] * 7 + [16, EOS]


def test_truncation_keeps_the_head_and_counts():
    r = rows()
    inputs, labels = padded(r, np.arange(3), seq_length=5, pad=PAD)
    assert inputs[2].tolist() == [BOS, 5, 6, 7, 8, 9]
    assert labels[2].tolist() == [IGNORE] * 6
    stats = length_stats(r, 5)
    assert stats["truncated"] == 2 and stats["noLabels"] == 1
    assert stats["tokens"] == 6 + 6 + 6 and stats["paddingShare"] == round(1 - 18 / 18, 4)


def test_auto_is_the_smallest_multiple_of_64_that_fits():
    lengths = np.array([10, 65, 66, 129])
    assert choose_seq_length(lengths, "auto") == 128          # 129 tokens = 128 + 1
    assert choose_seq_length(np.array([130]), "auto") == 192
    assert choose_seq_length(np.array([3]), "auto") == 64
    assert choose_seq_length(lengths, "auto", percentile=50) == 64
    assert choose_seq_length(lengths, 300) == 300


def test_histogram_and_padding_share():
    stats = length_stats(rows(), 8)
    assert stats["lengthHistogram"] == {"0-31": 3}
    assert stats["lengthPercentiles"]["max"] == 9
    assert stats["paddingShare"] == round(1 - (7 + 6 + 9) / 27, 4)


@pytest.mark.parametrize("setting, percentile, field", [
    ("big", 100, "spec.data.seqLength"), (1, 100, "spec.data.seqLength"), (True, 100, "spec.data.seqLength"),
    ("auto", 0, "spec.data.seqLengthPercentile"), ("auto", 101, "spec.data.seqLengthPercentile"),
])
def test_bad_settings_name_the_field(setting, percentile, field):
    with pytest.raises(SpecError) as err:
        choose_seq_length(np.array([5]), setting, percentile)
    assert err.value.field == field
