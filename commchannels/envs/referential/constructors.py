"""PettingZoo-style constructors (``env``, ``parallel_env``, ``raw_env``) for any game class,
so a new game gets every view by naming its class (see ``examples/colour_game.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from commchannels.config import check_bool
from commchannels.envs.referential.aec import ReferentialAECEnv
from commchannels.envs.referential.game import ReferentialGame
from commchannels.envs.referential.parallel import ReferentialParallelEnv
from commchannels.envs.turns import OrderEnforcing


class Constructors(NamedTuple):
    """The three PettingZoo entry points of one environment."""

    env: Callable[..., Any]
    parallel_env: Callable[..., Any]
    raw_env: Callable[..., ReferentialAECEnv]


def constructors_for(build_game: Callable[..., ReferentialGame], name: str) -> Constructors:
    """Entry points whose keyword arguments are ``split``, ``render_mode``, ``fast`` (the numpy
    fast path for one game, default True), ``flatten`` (``env`` and ``parallel_env`` only: flat
    Box observations, one Discrete action space and an agent indicator, see
    :mod:`commchannels.wrappers.flat`) and the game's own.

    Args:
        build_game: a game class (or any callable taking the game's keyword arguments).
        name: the environment's versioned name (``metadata["name"]``), e.g. ``"colours_v0"``.
    """

    def raw_env(*, split: str = "train", render_mode: str | None = None, fast: bool = True,
                **game_kwargs: Any) -> ReferentialAECEnv:
        env = ReferentialAECEnv(build_game(**game_kwargs), split=split, render_mode=render_mode,
                                fast=check_bool("fast", fast))
        env.metadata = {**env.metadata, "name": name}
        return env

    def env(*, flatten: bool = False, **kwargs: Any) -> Any:
        from commchannels.wrappers.flat import flatten_aec

        aec = raw_env(**kwargs)
        return OrderEnforcing(flatten_aec(aec) if check_bool("flatten", flatten) else aec)

    def parallel_env(*, split: str = "train", render_mode: str | None = None, fast: bool = True,
                     flatten: bool = False, **game_kwargs: Any) -> Any:
        from commchannels.wrappers.flat import flatten_parallel

        penv = ReferentialParallelEnv(build_game(**game_kwargs), split=split, render_mode=render_mode,
                                      fast=check_bool("fast", fast))
        penv.metadata = {**penv.metadata, "name": name}
        return flatten_parallel(penv) if check_bool("flatten", flatten) else penv

    raw_env.__doc__ = env.__doc__ = parallel_env.__doc__ = f"Build the {name} environment."
    return Constructors(env=env, parallel_env=parallel_env, raw_env=raw_env)
