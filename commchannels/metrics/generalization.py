"""Accuracy on held-out attribute combinations (compositional generalisation).

The referential games hold out some attribute combinations from training (the ``test`` split);
how well the receiver does on them measures generalisation to new meanings (Chaabouni et al.
2020, section 5). These helpers mark which meanings are unseen and score guesses on them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from commchannels.metrics.information import row_ids
from commchannels.metrics.messages import to_int_array


def _as_rows(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.ndim == 1:
        arr = arr[:, None]
    return to_int_array(arr, name, ndim=2)


def unseen_mask(meanings: Any, seen_meanings: Any) -> np.ndarray:
    """``(N,)`` bool: which rows of ``meanings`` are absent from ``seen_meanings``.

    >>> unseen_mask([[0, 1], [1, 1], [2, 0]], seen_meanings=[[0, 1], [2, 0]]).tolist()
    [False, True, False]
    """
    meanings = to_int_array(meanings, "meanings")
    seen = to_int_array(seen_meanings, "seen_meanings")
    if seen.shape[1] != meanings.shape[1]:
        raise ValueError(f"seen_meanings has {seen.shape[1]} attributes but meanings has "
                         f"{meanings.shape[1]}; expected the same number")
    ids = row_ids(np.concatenate([meanings, seen]))
    return ~np.isin(ids[: len(meanings)], ids[len(meanings):])


def heldout_accuracy(guesses: Any, targets: Any, mask: Any = None) -> float:
    """Fraction of rows where the guess equals the target, over the rows selected by ``mask``.

    Args:
        guesses: ``(N,)`` guessed candidate indices (discrimination) or ``(N, n_attributes)``
            guessed attribute values (reconstruction: a row is right only if every
            attribute is).
        targets: same shape as ``guesses``.
        mask: optional ``(N,)`` bool selecting the held-out rows (e.g. :func:`unseen_mask`
            or ``split == "test"``); ``None`` scores every row.

    Raises:
        ValueError: if the shapes differ or ``mask`` selects no row.

    >>> heldout_accuracy([[0, 1], [1, 1], [2, 2]], [[0, 1], [1, 0], [2, 2]])
    0.6666666666666666
    >>> heldout_accuracy([3, 1, 2], [3, 0, 2], mask=[False, True, True])
    0.5
    """
    guesses, targets = _as_rows(guesses, "guesses"), _as_rows(targets, "targets")
    if guesses.shape != targets.shape:
        raise ValueError(f"guesses has shape {guesses.shape} but targets has {targets.shape}; "
                         f"expected equal shapes")
    correct = (guesses == targets).all(axis=1)
    if mask is not None:
        if hasattr(mask, "detach"):
            mask = mask.detach().cpu().numpy()
        mask = np.asarray(mask, dtype=bool).reshape(-1)
        if mask.shape != correct.shape:
            raise ValueError(f"mask has {mask.size} entries; expected one per row ({len(correct)})")
        correct = correct[mask]
    if correct.size == 0:
        raise ValueError("mask selects no row; accuracy on an empty set is undefined")
    return float(correct.mean())
