"""Compositionality of a language: topographic similarity and disentanglement.

* Topographic similarity (Brighton & Kirby 2006, "Understanding linguistic evolution by
  visualizing the emergence of topographic mappings"; Lazaridou et al. 2018, "Emergence of
  linguistic communication from referential games with symbolic and pixel input").
* Positional and bag-of-symbols disentanglement (Chaabouni et al. 2020, "Compositionality and
  generalization in emergent languages"), following EGG's ``Disent`` callback
  (``egg/core/language_analysis.py``) except that padding after EOS is ignored.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from commchannels.config import check_choice
from commchannels.metrics.distances import (
    MEANING_DISTANCES,
    MESSAGE_DISTANCES,
    paired_edit_distance,
    paired_meaning_distance,
    spearman,
)
from commchannels.metrics.information import (
    entropy_of_ids,
    mutual_information_of_ids,
    row_ids,
)
from commchannels.metrics.messages import EOS, check_language, mask_padding, message_lengths

_CHUNK = 1 << 17  # pairs per vectorised block: big enough to amortise numpy, small for cache


def _pairs(n: int, max_pairs: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """All ``i < j`` pairs, or ``max_pairs`` pairs ``i != j`` drawn uniformly with replacement."""
    total = n * (n - 1) // 2
    if max_pairs is None or total <= max_pairs:
        return np.triu_indices(n, k=1)
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, size=max_pairs)
    j = rng.integers(0, n - 1, size=max_pairs)
    return i, j + (j >= i)


def _narrow_dtype(x: np.ndarray) -> type:
    top = int(x.max())
    return np.uint8 if top < 2**8 else np.uint16 if top < 2**16 else np.int64


def _message_distance(
    messages: np.ndarray, lengths: np.ndarray, i: np.ndarray, j: np.ndarray, metric: str
) -> np.ndarray:
    if metric == "hamming":
        return (messages[i] != messages[j]).mean(axis=1)
    # Edit distance compares the symbols before EOS (a shared final EOS changes nothing).
    content = lengths - (messages[np.arange(len(messages)), lengths - 1] == EOS)
    dist = paired_edit_distance(messages[i], content[i], messages[j], content[j]).astype(float)
    if metric == "normalized_edit":  # EGG's variant: divided by the mean length of the two
        mean_len = (content[i] + content[j]) / 2.0
        dist = np.divide(dist, mean_len, out=np.zeros_like(dist), where=mean_len > 0)
    return dist


def topographic_similarity(
    meanings: Any,
    messages: Any,
    meaning_distance: str = "hamming",
    message_distance: str = "edit",
    max_pairs: int | None = 2_000_000,
    seed: int = 0,
) -> float:
    """Spearman correlation between pairwise meaning distances and pairwise message distances.

    ``topsim = spearman([d_M(m_i, m_j)], [d_S(s_i, s_j)])`` over pairs ``i < j``: 1 when similar
    meanings always get similar messages, about 0 for an arbitrary mapping.

    Args:
        meanings: ``(N, n_attributes)`` attribute values.
        messages: ``(N, max_len)`` tokens, 0 = EOS (padding after it is ignored).
        meaning_distance: ``"hamming"`` (fraction of differing attributes), ``"euclidean"``
            or ``"cosine"``.
        message_distance: ``"edit"`` (Levenshtein distance between the symbols before EOS,
            as in Lazaridou et al. 2018), ``"normalized_edit"`` (divided by the two messages'
            mean length, as in EGG) or ``"hamming"`` (fraction of differing positions).
        max_pairs: when N(N-1)/2 exceeds it, this many pairs are drawn at random (with
            ``seed``) and the result is an estimate; ``None`` always uses every pair. The
            default keeps N <= 2000 exact.
        seed: seed of the pair sample.

    Returns:
        The correlation in [-1, 1]. 0.0 (not NaN) when it is undefined: fewer than two
        meanings, or all meaning distances or all message distances equal (a constant
        language).

    >>> meanings = [[0, 0], [0, 1], [1, 0], [1, 1]]
    >>> messages = [[1, 3, 0], [1, 4, 0], [2, 3, 0], [2, 4, 0]]
    >>> topographic_similarity(meanings, messages)
    1.0
    >>> topographic_similarity(meanings, [[1, 0, 0]] * 4)
    0.0
    """
    check_choice("meaning_distance", meaning_distance, MEANING_DISTANCES)
    check_choice("message_distance", message_distance, MESSAGE_DISTANCES)
    if max_pairs is not None and max_pairs < 1:
        raise ValueError(f"max_pairs={max_pairs!r} is invalid; expected None or an integer >= 1")
    meanings, messages = check_language(meanings, messages)
    if len(meanings) < 2:
        return 0.0
    messages = mask_padding(messages)
    lengths = message_lengths(messages)
    i, j = _pairs(len(meanings), max_pairs, seed)
    # Narrow dtypes cut the memory traffic of gathering millions of pairs (values are >= 0).
    messages = messages.astype(_narrow_dtype(messages))
    meanings = meanings.astype(_narrow_dtype(meanings))

    # Emergent languages repeat messages: distances between distinct messages are computed once.
    unique, inverse = np.unique(messages, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    n_unique = len(unique)
    table = None
    if n_unique * (n_unique - 1) // 2 < len(i):
        ui, uj = np.triu_indices(n_unique, k=1)
        u_len = message_lengths(unique)
        table = np.zeros((n_unique, n_unique))
        for start in range(0, len(ui), _CHUNK):
            a, b = ui[start:start + _CHUNK], uj[start:start + _CHUNK]
            table[a, b] = _message_distance(unique, u_len, a, b, message_distance)
        table += table.T

    meaning_dist = np.empty(len(i))
    message_dist = np.empty(len(i))
    for start in range(0, len(i), _CHUNK):
        a, b = i[start:start + _CHUNK], j[start:start + _CHUNK]
        meaning_dist[start:start + _CHUNK] = paired_meaning_distance(
            meanings[a], meanings[b], meaning_distance)
        message_dist[start:start + _CHUNK] = (
            table[inverse[a], inverse[b]] if table is not None
            else _message_distance(messages, lengths, a, b, message_distance))
    return spearman(meaning_dist, message_dist)


def _mi_gap(meanings: np.ndarray, symbols: np.ndarray) -> float:
    """Mean over non-constant columns k of ``(I_1st(a; s_k) - I_2nd(a; s_k)) / H(s_k)``.

    ``I_1st`` and ``I_2nd`` are the largest and second-largest mutual information between
    column k and one attribute. With a single attribute the second is taken as 0 (EGG fails).
    Constant columns carry no information and are skipped; 0.0 if every column is constant.
    """
    attributes = [row_ids(meanings[:, a]) for a in range(meanings.shape[1])]
    gaps = []
    for k in range(symbols.shape[1]):
        column = row_ids(symbols[:, k])
        h = entropy_of_ids(column)
        if h <= 1e-12:
            continue
        mis = sorted((mutual_information_of_ids(a, column) for a in attributes), reverse=True)
        second = mis[1] if len(mis) > 1 else 0.0
        gaps.append(min(1.0, (mis[0] - second) / h))  # <= 1 in exact arithmetic
    return float(np.mean(gaps)) if gaps else 0.0


def positional_disentanglement(meanings: Any, messages: Any) -> float:
    """Positional disentanglement (posdis) of Chaabouni et al. 2020, eq. (1).

    ``posdis = 1/|P| sum_{j in P} (I(s_j; a^j_1) - I(s_j; a^j_2)) / H(s_j)`` where ``s_j`` is
    the symbol at position j (EOS after the message's end), ``a^j_1`` and ``a^j_2`` the
    attributes with the highest and second-highest mutual information with it, and P the
    positions whose symbol is not constant. 1 when each position encodes exactly one attribute
    and nothing else; near 0 for holistic or random languages. 0.0 when every position is
    constant.

    >>> meanings = [[0, 0], [0, 1], [1, 0], [1, 1]]
    >>> positional_disentanglement(meanings, [[1, 3, 0], [1, 4, 0], [2, 3, 0], [2, 4, 0]])
    1.0
    """
    meanings, messages = check_language(meanings, messages)
    return _mi_gap(meanings, mask_padding(messages))


def bag_of_symbols_disentanglement(meanings: Any, messages: Any) -> float:
    """Bag-of-symbols disentanglement (bosdis) of Chaabouni et al. 2020.

    posdis's score computed on symbol counts instead of positions: ``n_s`` is how many times
    symbol ``s`` (EOS excluded) occurs in the message, and
    ``bosdis = 1/|S| sum_{s in S} (I(n_s; a^s_1) - I(n_s; a^s_2)) / H(n_s)`` over the symbols
    whose count varies. 1 when each symbol's count depends on a single attribute
    (order-free compositionality), e.g. disjoint symbols per attribute.

    >>> meanings = [[0, 0], [0, 1], [1, 0], [1, 1]]
    >>> bag_of_symbols_disentanglement(meanings, [[1, 3], [1, 4], [2, 3], [4, 2]])
    1.0
    """
    meanings, messages = check_language(meanings, messages)
    messages = mask_padding(messages)
    vocab_size = int(messages.max()) + 1
    rows = np.arange(len(messages))[:, None]
    flat = (rows * vocab_size + messages).ravel()
    counts = np.bincount(flat, minlength=len(messages) * vocab_size).reshape(-1, vocab_size)
    return _mi_gap(meanings, counts[:, EOS + 1:])
