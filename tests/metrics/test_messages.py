"""Message conventions: EOS handling, lengths, symbol usage, input checking."""

import numpy as np
import pytest
import torch

from commchannels.metrics import mask_padding, message_length_stats, message_lengths, symbol_usage
from commchannels.metrics.messages import to_int_array


def test_padding_after_first_eos_is_zeroed():
    messages = np.array([[2, 0, 3, 4], [1, 2, 3, 4], [0, 5, 0, 6]])
    assert mask_padding(messages).tolist() == [[2, 0, 0, 0], [1, 2, 3, 4], [0, 0, 0, 0]]


def test_lengths_count_the_eos_or_max_len():
    messages = torch.tensor([[2, 0, 3, 4], [1, 2, 3, 4], [0, 5, 0, 6], [1, 1, 1, 0]])
    assert message_lengths(messages).tolist() == [2, 4, 1, 4]
    stats = message_length_stats(messages)
    assert stats == {"mean": 2.75, "std": pytest.approx(np.std([2, 4, 1, 4])), "min": 1.0,
                     "max": 4.0}
    assert all(type(v) is float for v in stats.values())


def test_symbol_usage_ignores_padding_and_sums_to_one():
    usage = symbol_usage([[2, 0, 3, 3], [1, 2, 2, 2]], vocab_size=5)
    # tokens sent: 2, 0 | 1, 2, 2, 2  -> counts EOS 1, sym1 1, sym2 4, sym3 0
    assert usage.tolist() == pytest.approx([1 / 6, 1 / 6, 4 / 6, 0.0, 0.0])
    assert usage.sum() == pytest.approx(1.0)


def test_symbol_usage_rejects_tokens_outside_the_vocabulary():
    with pytest.raises(ValueError, match="vocab_size=3"):
        symbol_usage([[1, 5]], vocab_size=3)
    with pytest.raises(ValueError, match="vocab_size=0"):
        symbol_usage([[0, 0]], vocab_size=0)


def test_inputs_accept_torch_numpy_lists_and_integral_floats():
    for x in ([[1, 2]], np.array([[1, 2]], dtype=np.int32), torch.tensor([[1, 2]]),
              torch.tensor([[1.0, 2.0]])):
        assert to_int_array(x, "messages").tolist() == [[1, 2]]


@pytest.mark.parametrize("bad, message", [
    ([1, 2], "expected 2 dimensions"),
    (np.zeros((0, 3)), "empty"),
    ([[1.5, 2.0]], "non-integer"),
    ([[-1, 2]], "negative"),
    ([["a", "b"]], "expected integers"),
])
def test_bad_inputs_raise_value_error_naming_the_argument(bad, message):
    with pytest.raises(ValueError, match=message) as info:
        to_int_array(bad, "messages")
    assert "messages" in str(info.value)
