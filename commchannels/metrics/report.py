"""One call for the whole table of language metrics."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from commchannels.metrics.compositionality import (
    bag_of_symbols_disentanglement,
    positional_disentanglement,
    topographic_similarity,
)
from commchannels.metrics.information import (
    meaning_entropy,
    message_entropy,
    mutual_information,
    row_ids,
)
from commchannels.metrics.messages import (
    check_language,
    check_vocab,
    mask_padding,
    message_length_stats,
    symbol_usage,
)

# Report keys in display order, with a one-line meaning each (used by `commchannels analyse`).
REPORT_KEYS = {
    "n_objects": "number of (meaning, message) pairs",
    "n_messages": "distinct messages",
    "topsim": "topographic similarity (hamming meanings, edit messages)",
    "topsim_hamming": "topographic similarity (hamming meanings, hamming messages)",
    "posdis": "positional disentanglement",
    "bosdis": "bag-of-symbols disentanglement",
    "message_entropy": "H(message), bits",
    "meaning_entropy": "H(meaning), bits",
    "mutual_information": "I(meaning; message), bits",
    "normalized_mi": "I(meaning; message) / H(meaning)",
    "length_mean": "mean length (EOS included)",
    "length_std": "length standard deviation",
    "length_min": "shortest message",
    "length_max": "longest message",
    "symbols_used": "distinct non-EOS symbols used",
    "symbol_entropy": "entropy of symbol usage, bits",
}


def language_report(
    meanings: Any,
    messages: Any,
    vocab_size: int,
    attribute_sizes: Sequence[int],
    max_pairs: int | None = 2_000_000,
    seed: int = 0,
) -> dict[str, float]:
    """Every metric of this package for one language, as ``{name: float}`` (see ``REPORT_KEYS``).

    Args:
        meanings: ``(N, n_attributes)`` attribute values, attribute i in
            ``[0, attribute_sizes[i])``.
        messages: ``(N, max_len)`` tokens in ``[0, vocab_size)``, 0 = EOS.
        vocab_size: number of symbols, EOS included.
        attribute_sizes: number of values of each attribute.
        max_pairs, seed: passed to :func:`topographic_similarity`.

    Raises:
        ValueError: if the arrays do not match ``vocab_size`` / ``attribute_sizes``.

    >>> report = language_report([[0, 0], [0, 1], [1, 0], [1, 1]],
    ...                          [[1, 3], [1, 4], [2, 3], [2, 4]], 5, [2, 2])
    >>> report["topsim"], report["posdis"], report["mutual_information"]
    (1.0, 1.0, 2.0)
    """
    meanings, messages = check_language(meanings, messages)
    check_vocab(messages, vocab_size)
    sizes = [int(s) for s in attribute_sizes]
    if len(sizes) != meanings.shape[1] or min(sizes, default=1) < 1:
        raise ValueError(f"attribute_sizes={list(attribute_sizes)} is invalid; expected "
                         f"{meanings.shape[1]} positive sizes, one per meanings column")
    too_big = meanings >= np.asarray(sizes)[None, :]
    if too_big.any():
        column = int(np.nonzero(too_big.any(axis=0))[0][0])
        raise ValueError(f"meanings column {column} holds value {int(meanings[:, column].max())} "
                         f"but attribute_sizes[{column}]={sizes[column]}; expected values in "
                         f"[0, {sizes[column]})")
    masked = mask_padding(messages)
    lengths = message_length_stats(masked)
    usage = symbol_usage(masked, vocab_size)
    h_meaning = meaning_entropy(meanings)
    mi = mutual_information(meanings, masked)
    report = {
        "n_objects": float(len(meanings)),
        "n_messages": float(row_ids(masked).max() + 1),
        "topsim": topographic_similarity(meanings, masked, "hamming", "edit", max_pairs, seed),
        "topsim_hamming": topographic_similarity(
            meanings, masked, "hamming", "hamming", max_pairs, seed),
        "posdis": positional_disentanglement(meanings, masked),
        "bosdis": bag_of_symbols_disentanglement(meanings, masked),
        "message_entropy": message_entropy(masked),
        "meaning_entropy": h_meaning,
        "mutual_information": mi,
        "normalized_mi": mi / h_meaning if h_meaning > 0 else 0.0,
        **{f"length_{k}": v for k, v in lengths.items()},
        "symbols_used": float((usage[1:] > 0).sum()),
        "symbol_entropy": _entropy_of_frequencies(usage),
    }
    return {k: float(report[k]) for k in REPORT_KEYS}


def _entropy_of_frequencies(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum()) if p.size > 1 else 0.0

