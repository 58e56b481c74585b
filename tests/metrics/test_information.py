"""Entropy and mutual information on languages with known values."""

import math

import numpy as np
import pytest
import torch

from commchannels.metrics import meaning_entropy, message_entropy, mutual_information


def test_compositional_and_holistic_languages_carry_all_meaning(
        compositional_language, holistic_language):
    for meanings, messages in (compositional_language, holistic_language):
        n = len(meanings)
        assert message_entropy(messages) == pytest.approx(math.log2(n))
        assert mutual_information(meanings, messages) == pytest.approx(math.log2(n))
        assert meaning_entropy(meanings) == pytest.approx(math.log2(n))


def test_constant_language_has_no_entropy_and_no_information(constant_language):
    meanings, messages = constant_language
    assert message_entropy(messages) == 0.0
    assert mutual_information(meanings, messages) == 0.0


def test_random_language_information_is_bounded_by_entropies(random_language):
    meanings, messages = random_language
    mi = mutual_information(meanings, messages)
    assert 0.0 <= mi <= min(message_entropy(messages), meaning_entropy(meanings)) + 1e-9


def test_known_small_values():
    # Messages encode only the first of two binary attributes: I = 1 bit, H(message) = 1 bit.
    meanings = [[0, 0], [0, 1], [1, 0], [1, 1]]
    messages = torch.tensor([[1, 0, 7], [1, 0, 9], [2, 0, 7], [2, 0, 9]])  # padding differs
    assert message_entropy(messages) == pytest.approx(1.0)
    assert mutual_information(meanings, messages) == pytest.approx(1.0)
    assert message_entropy(np.array([[1], [1], [1], [2]])) == pytest.approx(
        -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25)))


def test_mismatched_rows_raise():
    with pytest.raises(ValueError, match="one message per meaning"):
        mutual_information([[0], [1]], [[1, 0]])
