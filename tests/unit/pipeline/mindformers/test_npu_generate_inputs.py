"""What evaluate and predict hand MindFormers' generate on NPUs, and what they
keep of its output. generate itself needs NPU kernels (the test boundary);
the batch is checked with MindFormers' own reading of it."""
import numpy as np
import pytest

from mathtune_pipeline.mindformers import candidates

PAD, EOS = 128002, 128001
PROMPTS = [[128000, 791, 4320, 13], [128000, 12], [128000, 5, 6, 7, 8, 9, 10]]


@pytest.mark.mindspore
def test_a_ragged_batch_is_padded_as_mindformers_generate_reads_it():
    from mindformers.generation.text_generator import get_valid_length_each_example

    with pytest.raises(ValueError):
        np.array(PROMPTS, dtype=np.int64)  # what generate does first: ragged lists are refused
    batch = candidates.right_padded(PROMPTS, PAD)
    valid, longest = get_valid_length_each_example(np.array(batch), PAD)
    assert list(valid) == [len(p) for p in PROMPTS] and longest == 7


class _Network:
    """Stands in for the NPU model only: returns what MindFormers' generate
    returns, each prompt without padding followed by its new tokens, the EOS
    it stopped on included."""

    def __init__(self):
        self.given = None

    def generate(self, input_ids, **kwargs):
        self.given = (input_ids, kwargs)
        new = {0: [15, 16, EOS], 1: [17, EOS], 2: [18, 19, 20]}
        return [np.array([t for t in row if t != PAD] + new[i], np.int32) for i, row in enumerate(input_ids)]


def test_only_the_new_tokens_before_eos_are_kept():
    network = _Network()
    new = candidates._generate_on_npu(network, PROMPTS, max_new_tokens=3, eos_id=EOS, pad_id=PAD)
    assert new == [[15, 16], [17], [18, 19, 20]]
    batch, kwargs = network.given
    assert len({len(row) for row in batch}) == 1 and kwargs["pad_token_id"] == PAD and kwargs["eos_token_id"] == EOS
