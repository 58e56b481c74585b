"""Typed options: dataclass fields with help text, bounds and choices, validated once.

Every configurable object (a trainer's config, an environment's settings) is a frozen dataclass
deriving from :class:`Options`. ``option`` declares a field's ``--help`` text, allowed values and
bounds; ``Options.__post_init__`` checks every field against its type hint and metadata
(integers are never floats or bools, floats are finite, ...) and then runs the class's own
cross-field ``validate``. Errors are ``ValueError`` naming the option, its value and what is
allowed.

Configs nest: a field whose type is an ``Options`` dataclass (``cfg.env: TeachingSettings``,
``cfg.run: RunOptions``) holds another object's options, so each option has one owner.
``add_config_arguments`` / ``config_from_args`` turn a config class into argparse options and
back, flattening nested fields (``--env.horizon``, or plain ``--horizon`` when no other field
has that name).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import numbers
import os
import re
import types
import typing
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

C = TypeVar("C")

# Seeds are combined arithmetically (seed * 1000 + iteration, seed + 1) and handed to torch and
# numpy generators: 32 bits keep every derived seed in range.
MAX_SEED = 2**32 - 1


def option(
    default: Any,
    help: str,
    choices: Iterable[Any] | None = None,
    *,
    low: float | None = None,
    high: float | None = None,
    gt: float | None = None,
    nested: Callable[[Any], type] | None = None,
) -> Any:
    """A dataclass field with ``--help`` text, allowed values and bounds.

    Args:
        default: the default value (lists, dicts and dataclass instances are copied per instance).
        help: one line for ``--help``.
        choices: the allowed values.
        low: inclusive lower bound (of every item, for tuples).
        high: inclusive upper bound.
        gt: exclusive lower bound.
        nested: for a nested options field whose class depends on other fields: called with the
            config being validated, returns the options class (e.g. a game's settings).
    """
    meta = {"help": help, "choices": tuple(choices) if choices is not None else None,
            "low": low, "high": high, "gt": gt, "nested": nested}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    if dataclasses.is_dataclass(default) and not isinstance(default, type):
        return dataclasses.field(default_factory=lambda: dataclasses.replace(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


# ---------------------------------------------------------------------------- value checks
def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``allowed``."""
    allowed = tuple(allowed)
    if isinstance(value, bool) and not any(isinstance(a, bool) for a in allowed):
        raise ValueError(f"{name}={value!r} is not allowed; expected one of {list(allowed)}")
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not allowed; expected one of {list(allowed)}")


def check_range(
    name: str, value: float, low: float | None = None, high: float | None = None, gt: float | None = None
) -> None:
    """Raise ``ValueError`` unless ``value`` is a finite number with ``low <= value <= high``
    and ``value > gt`` (every bound may be omitted)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}={value!r} is not a number; expected a finite real number")
    if not math.isfinite(value):
        raise ValueError(f"{name}={value!r} is not allowed; expected a finite number")
    if (low is not None and value < low) or (high is not None and value > high) or (
            gt is not None and not value > gt):
        lo = f"({gt}" if gt is not None else "[-inf" if low is None else f"[{low}"
        hi = "inf]" if high is None else f"{high}]"
        raise ValueError(f"{name}={value!r} is out of range; expected a value in {lo}, {hi}")


def as_int(name: str, value: Any) -> int:
    """``value`` as a Python int: ints and numpy integers pass; bools, floats (even 3.0),
    strings and NaN raise ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}={value!r} is not an integer; expected an int")
    return int(value)


def check_int(name: str, value: Any, low: int | None = None, high: int | None = None) -> int:
    """:func:`as_int` and :func:`check_range` in one call; returns the int."""
    value = as_int(name, value)
    check_range(name, value, low, high)
    return value


def check_bool(name: str, value: Any) -> bool:
    """``value`` as a bool; anything but ``True`` / ``False`` (or numpy's) raises ``ValueError``."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name}={value!r} is not a bool; expected True or False")
    return bool(value)


def check_float(name: str, value: Any, low: float | None = None, high: float | None = None,
                gt: float | None = None) -> float:
    """A finite real number (not a bool) within the bounds, returned as a float."""
    check_range(name, value, low, high, gt)
    return float(value)


def check_folder_path(name: str, value: str) -> None:
    """Raise ``ValueError`` unless ``value`` is a non-empty path whose existing parts are folders
    (so creating it cannot fail on a file in the way)."""
    if not value.strip():
        raise ValueError(f"{name}={value!r} is not allowed; expected a folder path, or None")
    path = Path(value).expanduser()
    for parent in (path, *path.parents):
        if parent.exists() and not parent.is_dir():
            raise ValueError(f"{name}={value!r} is not allowed: {str(parent)!r} is a file; expected a folder path")


def check_memory(what: str, estimate: float, fraction: float = 0.8) -> None:
    """Raise ``ValueError`` at once when ``estimate`` bytes cannot fit in this machine's memory
    (instead of allocating until the process dies)."""
    total = physical_memory()
    if total and estimate > fraction * total:
        raise ValueError(f"{what} needs about {estimate / 2**30:.1f} GiB of memory, more than "
                         f"{fraction:.0%} of this machine's {total / 2**30:.1f} GiB; expected smaller sizes")


def physical_memory() -> int:
    """Bytes of physical memory (0 where the platform does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


# ---------------------------------------------------------------------------- the base class
def _optional(hint: Any) -> tuple[Any, bool]:
    """``(inner type, whether None is allowed)`` of a hint like ``int | None``."""
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return (args[0] if len(args) == 1 else Any), len(args) < len(typing.get_args(hint))
    return hint, False


def _check_value(name: str, hint: Any, value: Any, meta: dict[str, Any]) -> Any:
    """``value`` checked against ``hint`` and the field metadata, normalised (tuples, ints)."""
    base, nullable = _optional(hint)
    if value is None:
        if nullable:
            return None
        raise ValueError(f"{name}=None is not allowed; expected a value of type {getattr(base, '__name__', base)}")
    bounds = {k: meta.get(k) for k in ("low", "high", "gt")}
    if typing.get_origin(base) in (tuple, list):
        if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
            raise ValueError(f"{name}={value!r} is not a sequence; expected a list of values")
        item = typing.get_args(base)[0]
        return tuple(_check_value(name, item, v, meta) for v in value)
    if base is bool:
        value = check_bool(name, value)
    elif base is int:
        value = as_int(name, value)
    elif base is float:
        value = check_float(name, value)
    elif base is str and not isinstance(value, str):
        raise ValueError(f"{name}={value!r} is not a string; expected text")
    if meta.get("choices") and value not in meta["choices"]:
        check_choice(name, value, meta["choices"])
    if base in (int, float) and any(b is not None for b in bounds.values()):
        check_range(name, value, **bounds)
    return value


class Options:
    """Base of every options dataclass: checks fields, then runs :meth:`validate`.

    Subclasses are ``@dataclass(frozen=True)`` and declare fields with :func:`option`.
    """

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            if not f.init:
                continue
            value = getattr(self, f.name)
            nested = nested_type(type(self), f, hints[f.name], self)
            if nested is not None:
                value = _as_options(f.name, nested, value)
            else:
                value = _check_value(f.name, hints[f.name], value, dict(f.metadata))
            object.__setattr__(self, f.name, value)
        self.validate()

    def validate(self) -> None:
        """Cross-field checks of a subclass (raise ``ValueError`` naming the options)."""


def nested_type(cls: type, f: dataclasses.Field, hint: Any, values: Any = None) -> type | None:
    """The options class a field nests, or ``None`` for a plain field."""
    resolve = f.metadata.get("nested")
    if resolve is not None:
        return resolve(values)
    base, _ = _optional(hint)
    if isinstance(base, type) and dataclasses.is_dataclass(base):
        return base
    return None


def _as_options(name: str, cls: type, value: Any) -> Any:
    if isinstance(value, cls):
        return value
    if value is None:
        return cls()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if not isinstance(value, dict):
        raise ValueError(f"{name}={value!r} is not allowed; expected {cls.__name__} or a dict of its options")
    try:
        return config_from_dict(cls, value, prefix=f"{name}.")
    except ValueError as err:  # name the nested option as the command line does: env.horizon=0 ...
        text = str(err)
        if re.match(r"^\w+=", text):
            raise ValueError(f"{name}.{text}") from None
        raise


# ---------------------------------------------------------------------------- command line
def _cli_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def _none_or(kind: type) -> Callable[[str], Any]:
    """argparse type of an optional option: ``none`` / ``None`` mean None."""

    def parse(text: str) -> Any:
        return None if text.lower() == "none" else kind(text)

    parse.__name__ = kind.__name__  # argparse names the type in its error messages
    return parse


def _flat_fields(config_cls: type, resolved: dict[str, type]) -> list[tuple[str, dataclasses.Field, Any]]:
    """``(dotted name, field, hint)`` of every leaf option, nested ones included."""
    out = []
    hints = typing.get_type_hints(config_cls)
    for f in dataclasses.fields(config_cls):
        if not f.init:
            continue
        nested = resolved.get(f.name) or (
            None if f.metadata.get("nested") else nested_type(config_cls, f, hints[f.name]))
        if nested is not None:
            out += [(f"{f.name}.{name}", g, h) for name, g, h in _flat_fields(nested, {})]
        else:
            out.append((f.name, f, hints[f.name]))
    return out


def add_config_arguments(parser: argparse.ArgumentParser, config_cls: type,
                         resolved: dict[str, type] | None = None) -> None:
    """Add one ``--option`` per field of ``config_cls``, nested fields flattened.

    Args:
        parser: the parser to extend.
        config_cls: an options dataclass.
        resolved: options classes of nested fields declared with ``option(nested=...)``,
            which depend on other options (``{"env": GameSettings}``).
    """
    flat = _flat_fields(config_cls, resolved or {})
    leaf_counts: dict[str, int] = {}
    for dotted, _, _ in flat:
        leaf = dotted.rsplit(".", 1)[-1]
        leaf_counts[leaf] = leaf_counts.get(leaf, 0) + 1
    for dotted, f, hint in flat:
        leaf = dotted.rsplit(".", 1)[-1]
        names = [_cli_name(dotted)]
        if "." in dotted and leaf_counts[leaf] == 1:
            names.append(_cli_name(leaf))  # plain --horizon when unambiguous
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        base, nullable = _optional(hint)
        kwargs: dict[str, Any] = {"default": argparse.SUPPRESS, "dest": dotted}
        if base is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(base) in (tuple, list):
            item = typing.get_args(base)[0]
            kwargs.update(type=item if item in (int, float, str) else str, nargs="*")
        elif base in (int, float, str):
            kwargs["type"] = _none_or(base) if nullable else base
        else:
            kwargs["type"] = str
        if f.metadata.get("choices"):
            kwargs["choices"] = list(f.metadata["choices"])
        elif base is not bool:
            kwargs["metavar"] = leaf.upper()
        kwargs["help"] = f"{f.metadata.get('help', '')} (default: {default})"
        parser.add_argument(*names, **kwargs)


def config_from_args(config_cls: type[C], namespace: argparse.Namespace) -> C:
    """Build ``config_cls`` from options parsed by :func:`add_config_arguments` (only the
    options given on the command line; the rest keep their defaults)."""
    values: dict[str, Any] = {}
    for key, value in vars(namespace).items():
        parts = key.split(".")
        target = values
        for part in parts[:-1]:
            target = target.setdefault(part, {})
        target[parts[-1]] = value
    names = {f.name for f in dataclasses.fields(config_cls) if f.init}
    return config_from_dict(config_cls, {k: v for k, v in values.items() if k in names})


def config_to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a dataclass config (nested configs as nested dicts)."""
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def config_from_dict(config_cls: type[C], data: dict[str, Any], prefix: str = "") -> C:
    """Rebuild a config saved with :func:`config_to_dict` (unknown keys are an error)."""
    names = {f.name for f in dataclasses.fields(config_cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown {config_cls.__name__} options {[prefix + u for u in unknown]}; "
                         f"expected some of {sorted(names)}")
    return config_cls(**data)
