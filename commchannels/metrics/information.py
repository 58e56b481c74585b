"""Plug-in entropies and mutual information of languages, in bits.

All quantities are those of the *empirical* distribution over the N rows given (the "plug-in"
estimates used by EGG, ``egg/core/language_analysis.py``, and Chaabouni et al. 2020). With few
samples per outcome they are biased: a random language over N distinct messages has
``mutual_information == log2(N)`` exactly like a holistic one, so compare languages of equal N.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from commchannels.metrics.messages import check_language, mask_padding, to_int_array


def row_ids(rows: np.ndarray) -> np.ndarray:
    """``(N,)`` int ids, equal for equal rows (1-D input: one value per row)."""
    if rows.ndim == 1:
        return np.unique(rows, return_inverse=True)[1].reshape(-1)
    return np.unique(rows, axis=0, return_inverse=True)[1].reshape(-1)


def entropy_of_ids(ids: np.ndarray) -> float:
    """Entropy in bits of the empirical distribution of the integer labels ``ids``."""
    counts = np.bincount(ids) if ids.size else np.zeros(0)
    counts = counts[counts > 0].astype(np.float64)
    if counts.size <= 1:
        return 0.0
    p = counts / counts.sum()
    return float(max(0.0, -(p * np.log2(p)).sum()))


def mutual_information_of_ids(x: np.ndarray, y: np.ndarray) -> float:
    """``I(X; Y) = H(X) + H(Y) - H(X, Y)`` in bits for paired integer labels."""
    x, y = row_ids(x), row_ids(y)
    joint = x * (int(y.max()) + 1) + y
    mi = entropy_of_ids(x) + entropy_of_ids(y) - entropy_of_ids(row_ids(joint))
    return float(max(0.0, mi))  # clip round-off below zero


def message_entropy(messages: Any) -> float:
    """Entropy in bits of the empirical distribution of whole messages (padding ignored).

    ``H(M) = -sum_m p(m) log2 p(m)``; ``log2(N)`` when all N messages differ, 0 for a constant
    language (EGG ``calc_entropy``; Kharitonov et al. 2020, "Entropy minimization in emergent
    languages").

    >>> message_entropy([[1, 2], [3, 4]])
    1.0
    >>> message_entropy([[5, 0, 1], [5, 0, 2]])  # equal up to EOS
    0.0
    """
    return entropy_of_ids(row_ids(mask_padding(messages)))


def meaning_entropy(meanings: Any) -> float:
    """Entropy in bits of the empirical distribution of whole meanings.

    >>> meaning_entropy([[0, 1], [1, 0], [1, 1], [0, 0]])
    2.0
    """
    return entropy_of_ids(row_ids(to_int_array(meanings, "meanings")))


def mutual_information(meanings: Any, messages: Any) -> float:
    """Mutual information in bits between whole meanings and whole messages.

    ``I(meaning; message) = H(meaning) + H(message) - H(meaning, message)`` over the empirical
    joint distribution of the N pairs (padding after EOS ignored). It equals ``H(meaning)``
    when messages identify meanings uniquely and 0 for a constant language.

    >>> mutual_information([[0], [1], [0], [1]], [[3, 0], [4, 0], [3, 0], [4, 0]])
    1.0
    >>> mutual_information([[0], [1]], [[7, 0], [7, 0]])
    0.0
    """
    meanings, messages = check_language(meanings, messages)
    return mutual_information_of_ids(row_ids(meanings), row_ids(mask_padding(messages)))
