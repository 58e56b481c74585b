"""Hand-made languages with known metric values, shared by the metrics tests."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

SIZES = (4, 5, 3)  # attribute sizes of the hand-made languages


def all_meanings(sizes=SIZES) -> np.ndarray:
    """Every attribute combination once: attributes are exactly independent."""
    return np.array(list(itertools.product(*(range(s) for s in sizes))), dtype=np.int64)


def compositional(sizes=SIZES, disjoint: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Token i encodes attribute i (symbols disjoint between attributes if asked), then EOS."""
    meanings = all_meanings(sizes)
    offsets = np.cumsum((0,) + tuple(sizes[:-1])) if disjoint else np.zeros(len(sizes), int)
    tokens = meanings + 1 + offsets[None, :]
    messages = np.concatenate([tokens, np.zeros((len(meanings), 1), np.int64)], axis=1)
    return meanings, messages


@pytest.fixture
def compositional_language() -> tuple[np.ndarray, np.ndarray]:
    return compositional()


@pytest.fixture
def holistic_language() -> tuple[np.ndarray, np.ndarray]:
    """A random bijection meanings -> messages (the compositional messages, shuffled)."""
    meanings, messages = compositional()
    return meanings, messages[np.random.default_rng(0).permutation(len(messages))]


@pytest.fixture
def random_language() -> tuple[np.ndarray, np.ndarray]:
    """Meanings and messages drawn independently (messages may repeat and end early)."""
    rng = np.random.default_rng(1)
    return rng.integers(0, 5, size=(600, 4)), rng.integers(0, 6, size=(600, 5))


@pytest.fixture
def constant_language() -> tuple[np.ndarray, np.ndarray]:
    meanings = all_meanings()
    return meanings, np.tile(np.array([[3, 1, 0]]), (len(meanings), 1))
