"""Typed configs: dataclass fields with help text become command-line options.

Every training loop takes a frozen dataclass config. ``option`` attaches the help text that
``--help`` shows; ``add_config_arguments`` / ``config_from_args`` turn a config class into
argparse options and back. Validation lives in each config's ``__post_init__`` and raises
``ValueError`` naming the option, its value and what is allowed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import typing
from collections.abc import Iterable
from typing import Any, TypeVar

C = TypeVar("C")


def option(default: Any, help: str, choices: Iterable[Any] | None = None) -> Any:
    """A dataclass field with ``--help`` text and optional allowed values."""
    meta = {"help": help, "choices": tuple(choices) if choices is not None else None}
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``allowed``."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not allowed; expected one of {list(allowed)}")


def check_range(
    name: str, value: float, low: float | None = None, high: float | None = None
) -> None:
    """Raise ``ValueError`` unless ``low <= value <= high`` (either bound may be open)."""
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ValueError(f"{name}={value!r} is out of range; expected a value in [{lo}, {hi}]")


def _cli_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_config_arguments(parser: argparse.ArgumentParser, config_cls: type) -> None:
    """Add one ``--option`` per field of the dataclass ``config_cls``."""
    hints = typing.get_type_hints(config_cls)
    for f in dataclasses.fields(config_cls):
        if not f.init:
            continue
        hint = hints[f.name]
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        help_text = f.metadata.get("help", "")
        choices = f.metadata.get("choices")
        kwargs: dict[str, Any] = {"default": default, "dest": f.name}
        origin = typing.get_origin(hint)
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        base = args[0] if origin is typing.Union or str(origin) == "<class 'types.UnionType'>" else hint
        if base is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(base) in (tuple, list):
            item = typing.get_args(base)[0]
            kwargs.update(type=item, nargs="+")
        elif base in (int, float, str):
            kwargs["type"] = base
        else:
            kwargs["type"] = str
        if choices:
            kwargs["choices"] = list(choices)
        kwargs["help"] = f"{help_text} (default: {default})"
        parser.add_argument(_cli_name(f.name), **kwargs)


def config_from_args(config_cls: type[C], namespace: argparse.Namespace) -> C:
    """Build ``config_cls`` from parsed arguments (validation runs in ``__post_init__``)."""
    hints = typing.get_type_hints(config_cls)
    values = {}
    for f in dataclasses.fields(config_cls):
        if not f.init or not hasattr(namespace, f.name):
            continue
        value = getattr(namespace, f.name)
        if typing.get_origin(hints[f.name]) is tuple and isinstance(value, list):
            value = tuple(value)
        values[f.name] = value
    return config_cls(**values)


def config_to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a dataclass config."""
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def config_from_dict(config_cls: type[C], data: dict[str, Any]) -> C:
    """Rebuild a config saved with :func:`config_to_dict` (unknown keys are an error)."""
    names = {f.name for f in dataclasses.fields(config_cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"unknown {config_cls.__name__} keys {unknown}; expected some of {sorted(names)}")
    hints = typing.get_type_hints(config_cls)
    values = {
        k: tuple(v) if typing.get_origin(hints[k]) is tuple and isinstance(v, list) else v
        for k, v in data.items()
    }
    return config_cls(**values)
