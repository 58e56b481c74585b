"""Message conventions, input checking and simple message statistics.

A *language* is a pair of integer arrays: ``meanings`` ``(N, n_attributes)`` of attribute values
and ``messages`` ``(N, max_len)`` of tokens. Token 0 is end-of-sequence (EOS), as in the
referential games (``commchannels.envs.referential.game.EOS``): tokens after the first 0 are
padding and every metric ignores them. A message's *length* counts its tokens up to and
including the first 0, or ``max_len`` when it has none (Chaabouni et al. 2019, "Anti-efficient
encoding in emergent communication", count the EOS the same way).

Every function accepts numpy arrays, torch tensors (any device) or nested lists, and returns
plain Python floats / numpy arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np

EOS = 0  # same value as commchannels.envs.referential.game.EOS; metrics do not import the envs


def to_int_array(x: Any, name: str, ndim: int = 2) -> np.ndarray:
    """``x`` as an ``int64`` numpy array of ``ndim`` dimensions, checked.

    Floats are accepted when they hold whole numbers (straight-through messages often do).

    Raises:
        ValueError: naming ``name`` if ``x`` has the wrong number of dimensions, is empty,
            holds non-integers or negative values.

    >>> to_int_array([[1, 2], [3, 0]], "messages").dtype
    dtype('int64')
    """
    if hasattr(x, "detach"):  # torch tensor: no torch import needed here
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.ndim != ndim:
        raise ValueError(f"{name} has shape {arr.shape}; expected {ndim} dimensions")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}); expected at least one row")
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name} has dtype {arr.dtype}; expected integers")
    if not np.issubdtype(arr.dtype, np.integer) and (
        not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr))
    ):
            raise ValueError(f"{name} holds non-integer values; expected integer tokens/values")
    arr = arr.astype(np.int64)
    if arr.size and arr.min() < 0:
        raise ValueError(f"{name} holds negative values (min {arr.min()}); expected values >= 0")
    return arr


def check_language(meanings: Any, messages: Any) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays converted with :func:`to_int_array` and checked to have the same N."""
    meanings = to_int_array(meanings, "meanings")
    messages = to_int_array(messages, "messages")
    if meanings.shape[0] != messages.shape[0]:
        raise ValueError(f"meanings has {meanings.shape[0]} rows but messages has "
                         f"{messages.shape[0]}; expected one message per meaning")
    return meanings, messages


def mask_padding(messages: Any) -> np.ndarray:
    """The messages with every token after the first EOS set to EOS.

    Two messages that differ only after their EOS become identical, so comparisons and counts
    see only what was actually said.

    >>> mask_padding([[3, 0, 5], [1, 2, 4]]).tolist()
    [[3, 0, 0], [1, 2, 4]]
    """
    messages = to_int_array(messages, "messages")
    after_eos = np.cumsum(messages == EOS, axis=1) > 0  # at or after the first EOS
    return np.where(after_eos, EOS, messages)


def message_lengths(messages: Any) -> np.ndarray:
    """``(N,)`` lengths: tokens up to and including the first EOS, or ``max_len`` if none.

    >>> message_lengths([[3, 0, 5], [1, 2, 4], [0, 0, 0]]).tolist()
    [2, 3, 1]
    """
    messages = to_int_array(messages, "messages")
    is_eos = messages == EOS
    first = np.argmax(is_eos, axis=1) + 1
    return np.where(is_eos.any(axis=1), first, messages.shape[1]).astype(np.int64)


def message_length_stats(messages: Any) -> dict[str, float]:
    """Mean, (population) standard deviation, min and max of :func:`message_lengths`.

    >>> message_length_stats([[3, 0, 5], [1, 2, 4]])
    {'mean': 2.5, 'std': 0.5, 'min': 2.0, 'max': 3.0}
    """
    lengths = message_lengths(messages)
    return {
        "mean": float(lengths.mean()),
        "std": float(lengths.std()),
        "min": float(lengths.min()),
        "max": float(lengths.max()),
    }


def symbol_usage(messages: Any, vocab_size: int) -> np.ndarray:
    """``(vocab_size,)`` relative frequency of each symbol among the tokens actually sent.

    Tokens up to and including each message's first EOS are counted (index 0 is the EOS
    frequency); padding after it is not. The result sums to 1.

    Raises:
        ValueError: if ``vocab_size`` < 1 or a token is >= ``vocab_size``.

    >>> symbol_usage([[1, 0, 0], [2, 2, 1]], vocab_size=4).tolist()
    [0.2, 0.4, 0.4, 0.0]
    """
    messages = to_int_array(messages, "messages")
    check_vocab(messages, vocab_size)
    lengths = message_lengths(messages)
    sent = np.arange(messages.shape[1])[None, :] < lengths[:, None]
    counts = np.bincount(messages[sent], minlength=vocab_size).astype(np.float64)
    return counts / counts.sum()


def check_vocab(messages: np.ndarray, vocab_size: int) -> None:
    """Raise ``ValueError`` unless every token of ``messages`` is in ``[0, vocab_size)``."""
    if int(vocab_size) < 1:
        raise ValueError(f"vocab_size={vocab_size!r} is invalid; expected an integer >= 1")
    if messages.max() >= vocab_size:
        raise ValueError(f"messages hold token {int(messages.max())} but vocab_size={vocab_size}; "
                         f"expected tokens in [0, {vocab_size})")
