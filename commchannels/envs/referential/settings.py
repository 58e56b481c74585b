"""A referential game's options as an :class:`~commchannels.config.Options` dataclass, derived
from the game class's constructor: the constructor stays the one owner of every option (its
keyword arguments, their types, defaults, documentation and checks), and a trainer's config
nests the derived dataclass, so a new game (``examples/colour_game.py``, or a user's) trains
from the command line with its own options and records them in ``config.json``.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import typing
from functools import cache
from typing import Any

from commchannels.config import Options, option
from commchannels.envs.referential.game import ReferentialGame


def _arg_docs(cls: type) -> dict[str, str]:
    """``{name: text}`` of the ``Args:`` sections of ``cls`` and its bases (first line each)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        text = inspect.getdoc(klass) or ""
        section = text.split("Args:", 1)[1] if "Args:" in text else ""
        for match in re.finditer(r"^\s{4}(\w+):\s*(.+)$", section, flags=re.MULTILINE):
            docs[match.group(1)] = match.group(2).strip()
    return docs


def _constructor_parameters(cls: type) -> list[tuple[str, Any, Any]]:
    """``(name, type hint, default)`` of every keyword argument of ``cls`` and of the bases its
    ``**kwargs`` forwards to (``ReferentialGame``'s rules)."""
    out: dict[str, tuple[str, Any, Any]] = {}
    for klass in cls.__mro__:
        if "__init__" not in vars(klass) or klass is object:
            continue
        init = vars(klass)["__init__"]
        hints = typing.get_type_hints(init)
        signature = inspect.signature(init)
        forwards = False
        for name, param in list(signature.parameters.items())[1:]:
            if param.kind is param.VAR_KEYWORD:
                forwards = True
                continue
            if param.kind is param.VAR_POSITIONAL or name in out:
                continue
            if param.default is param.empty:
                raise TypeError(f"{cls.__name__}.__init__ argument {name!r} has no default; a game's options "
                                "need defaults")
            out[name] = (name, hints.get(name, Any), param.default)
        if not forwards:
            break
    return list(out.values())


@cache
def game_settings(game_cls: type[ReferentialGame], defaults: tuple[tuple[str, Any], ...] = ()) -> type[Options]:
    """The frozen options dataclass of ``game_cls`` (cached: one class per game class and defaults).

    Its fields are the constructor's keyword arguments; ``settings.make_game()`` builds the game
    (whose constructor validates them), and ``__post_init__`` does so at once.

    Args:
        game_cls: a :class:`ReferentialGame` subclass.
        defaults: ``(name, value)`` pairs replacing the constructor's defaults (a registered
            preset such as a harder tier of the same game); names the constructor does not take
            are ignored (``objects``, which picks the class itself).
    """
    if not (isinstance(game_cls, type) and issubclass(game_cls, ReferentialGame)):
        raise TypeError(f"{game_cls!r} is not a ReferentialGame subclass")
    docs = _arg_docs(game_cls)
    overrides = dict(defaults)
    fields = [(name, hint, option(overrides.get(name, default), docs.get(name, name.replace("_", " "))))
              for name, hint, default in _constructor_parameters(game_cls)]

    def validate(self: Any) -> None:
        self.make_game()  # the constructor's checks, once, when the options are built

    def make_game(self: Any) -> ReferentialGame:
        return game_cls(**dataclasses.asdict(self))

    namespace = {"validate": validate, "make_game": make_game, "game_class": game_cls,
                 "__doc__": f"Options of {game_cls.__name__} (its constructor's keyword arguments)."}
    return dataclasses.make_dataclass(f"{game_cls.__name__}Settings", fields, bases=(Options,),
                                      frozen=True, namespace=namespace)
