"""Vectorised distances between paired rows and Spearman's rank correlation.

Topographic similarity needs distances for up to ~2 million pairs, so nothing here loops over
pairs in Python: :func:`paired_edit_distance` runs the Levenshtein dynamic programme for all
pairs at once (``max_len**2`` numpy operations over the pairs), and :func:`spearman` ranks with
a sort instead of calling SciPy per pair.
"""

from __future__ import annotations

import numpy as np

MEANING_DISTANCES = ("hamming", "euclidean", "cosine")
MESSAGE_DISTANCES = ("edit", "normalized_edit", "hamming")


def paired_meaning_distance(a: np.ndarray, b: np.ndarray, metric: str) -> np.ndarray:
    """``(P,)`` distances between rows ``a[k]`` and ``b[k]`` (both ``(P, n_attributes)``).

    * ``hamming``: fraction of attributes that differ (SciPy's ``hamming``).
    * ``euclidean``: Euclidean norm of the difference of the attribute values.
    * ``cosine``: ``1 - a.b / (|a| |b|)``. SciPy returns NaN for an all-zero vector; here
      two equal vectors are at distance 0 and an all-zero vector is at distance 1 from any
      other vector.

    >>> paired_meaning_distance(np.array([[0, 1]]), np.array([[0, 2]]), "hamming").tolist()
    [0.5]
    """
    if metric == "hamming":
        return (a != b).mean(axis=1)
    af, bf = a.astype(np.float64), b.astype(np.float64)
    if metric == "euclidean":
        return np.sqrt(((af - bf) ** 2).sum(axis=1))
    if metric == "cosine":
        norms = np.linalg.norm(af, axis=1) * np.linalg.norm(bf, axis=1)
        cos = np.divide((af * bf).sum(axis=1), norms, out=np.zeros(len(af)), where=norms > 0)
        # Rounding makes distances that differ only by round-off (parallel vectors) exact ties.
        dist = np.round(1.0 - np.clip(cos, -1.0, 1.0), 12)
        return np.where((a == b).all(axis=1), 0.0, dist)
    raise ValueError(f"meaning_distance={metric!r} is not allowed; expected one of "
                     f"{list(MEANING_DISTANCES)}")


def edit_distance(a: list[int], b: list[int]) -> int:
    """Levenshtein distance of two token lists: the plain one-pair dynamic programme, the
    reference that :func:`paired_edit_distance` is checked and timed against.

    >>> edit_distance([1, 2, 3], [2, 3, 4, 5])
    3
    """
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[:], i
        for j, y in enumerate(b, 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (x != y))
    return row[-1]


def paired_edit_distance(
    a: np.ndarray, len_a: np.ndarray, b: np.ndarray, len_b: np.ndarray
) -> np.ndarray:
    """Levenshtein distance between ``a[k, :len_a[k]]`` and ``b[k, :len_b[k]]`` for every k.

    Wagner-Fischer dynamic programme (Wagner & Fischer 1974) over all pairs at once: the table
    row ``D[i, :]`` is a ``(max_len + 1, P)`` array, and pair k's answer is read at
    ``D[len_a[k], len_b[k]]``. Unit costs for insertion, deletion and substitution.

    >>> s, t = np.array([[1, 2, 3, 0]]), np.array([[2, 3, 4, 5]])
    >>> paired_edit_distance(s, np.array([3]), t, np.array([4])).tolist()
    [3]
    """
    n_pairs, max_len = a.shape
    dtype = np.int16 if max_len < 2**14 else np.int32
    # Token-major copies make every row read below contiguous (the pairs are the fast axis).
    a_t, b_t = np.ascontiguousarray(a.T), np.ascontiguousarray(b.T)
    prev = np.repeat(np.arange(max_len + 1, dtype=dtype)[:, None], n_pairs, axis=1)
    out = np.asarray(len_b, dtype=dtype).copy()  # D[0, len_b] = len_b for empty a
    columns = np.arange(n_pairs)
    for i in range(1, int(len_a.max(initial=0)) + 1):
        cost = a_t[i - 1][None, :] != b_t
        # Deletion and substitution depend only on the previous row; insertion is sequential.
        best = np.minimum(prev[1:] + 1, prev[:-1] + cost)
        cur = np.empty_like(prev)
        cur[0] = i
        for j in range(1, max_len + 1):
            np.minimum(best[j - 1], cur[j - 1] + 1, out=cur[j])
        done = len_a == i
        out[done] = cur[len_b[done], columns[done]]
        prev = cur
    return out.astype(np.int64)


def rankdata(x: np.ndarray) -> np.ndarray:
    """Ranks from 1 with ties given their average rank (SciPy's ``rankdata(method="average")``).

    >>> rankdata(np.array([10.0, 20.0, 10.0])).tolist()
    [1.5, 3.0, 1.5]
    """
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    last = np.cumsum(counts)
    return (last - (counts - 1) / 2.0)[inverse.reshape(-1)]


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation: Pearson correlation of the average ranks.

    Returns 0.0 (not NaN) when either input is constant and the correlation is undefined.

    >>> spearman(np.array([1.0, 2.0, 3.0]), np.array([10.0, 40.0, 90.0]))
    1.0
    >>> spearman(np.array([1.0, 2.0, 3.0]), np.array([5.0, 5.0, 5.0]))
    0.0
    """
    rx, ry = rankdata(x), rankdata(y)
    rx -= rx.mean()
    ry -= ry.mean()
    denominator = np.sqrt((rx @ rx) * (ry @ ry))
    if len(rx) < 2 or denominator <= 0:
        return 0.0
    return float(np.clip((rx @ ry) / denominator, -1.0, 1.0))
