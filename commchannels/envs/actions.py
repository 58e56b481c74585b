"""Agents' actions, checked and converted in one place for every view and core.

An action is a choice among integers, so only integers are accepted: Python ints, numpy
integer scalars and 0-d integer arrays for a ``Discrete`` action; integer arrays, or lists or
tuples of ints, of the right length for a ``MultiDiscrete`` one. Floats (even ``2.0``), bools,
NaN, strings and ``None`` raise ``ValueError`` naming the agent, the value and what was
expected: converting them (``2.7`` to 2, ``True`` to 1, NaN to ``-2**63``) would hide a broken
policy. Values are range-checked by the batched cores, which know what each one means.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces

_INT64 = np.iinfo(np.int64)


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _shown(value: Any, limit: int = 80) -> str:
    text = repr(value.tolist()) if isinstance(value, (np.ndarray, torch.Tensor)) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _expected(space: spaces.Space) -> str:
    if isinstance(space, spaces.Discrete):
        low = int(space.start)
        return f"one integer in [{low}, {low + int(space.n)}) (an int, a numpy integer or a 0-d integer array)"
    nvec = np.asarray(space.nvec).tolist()
    return f"{len(nvec)} integers below {nvec} (an integer array, or a list or tuple of ints)"


def action_array(agent: str, action: Any, space: spaces.Space) -> np.ndarray:
    """``agent``'s ``action`` as an int64 array of the space's shape (``()`` for ``Discrete``,
    ``(n,)`` for a one-dimensional ``MultiDiscrete``).

    Raises:
        ValueError: the action is not integers of that shape (see the module docstring).
    """
    if isinstance(action, torch.Tensor):
        array: Any = action.detach().cpu().numpy()
    elif isinstance(action, np.ndarray):
        array = action
    elif _is_int(action) or (isinstance(action, (list, tuple)) and all(_is_int(v) for v in action)):
        values = [action] if _is_int(action) else action
        if any(not _INT64.min <= int(v) <= _INT64.max for v in values):
            raise ValueError(f"{agent} action {_shown(action)} is out of range; expected {_expected(space)}")
        array = np.asarray(action, dtype=np.int64)
    else:
        array = None
    if array is None or array.dtype.kind not in "iu" or array.shape != space.shape:
        raise ValueError(f"{agent} action {_shown(action)} is not allowed; expected {_expected(space)}")
    if array.dtype.kind == "u" and array.size and int(array.max()) > _INT64.max:
        raise ValueError(f"{agent} action {_shown(action)} is out of range; expected {_expected(space)}")
    return array.astype(np.int64, copy=False)


def integer_tensor(name: str, values: Any) -> torch.Tensor:
    """Batched actions (a tensor, array or nested list) as a long tensor.

    Raises:
        ValueError: the values are not integers (floats, bools, NaN, strings, ragged lists).
    """
    if isinstance(values, torch.Tensor):
        if values.dtype.is_floating_point or values.dtype.is_complex or values.dtype == torch.bool:
            raise ValueError(f"{name} {_shown(values)} have dtype {values.dtype}; expected integers")
        return values.long()
    try:
        array = np.asarray(values)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{name} {_shown(values)} are not allowed; expected an integer array") from err
    if array.dtype.kind not in "iu":
        raise ValueError(f"{name} {_shown(values)} have dtype {array.dtype}; expected integers")
    if array.dtype.kind == "u" and array.size and int(array.max()) > _INT64.max:
        raise ValueError(f"{name} {_shown(values)} are out of range; expected int64 values")
    return torch.from_numpy(array.astype(np.int64))
