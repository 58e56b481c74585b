"""PettingZoo-style constructors (``env``, ``parallel_env``, ``raw_env``) for any game class,
so a new game gets every view by naming its class (see ``examples/colour_game.py``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from pettingzoo.utils import wrappers

from commchannels.envs.referential.aec import ReferentialAECEnv
from commchannels.envs.referential.game import ReferentialGame
from commchannels.envs.referential.parallel import ReferentialParallelEnv


class Constructors(NamedTuple):
    """The three PettingZoo entry points of one environment."""

    env: Callable[..., Any]
    parallel_env: Callable[..., ReferentialParallelEnv]
    raw_env: Callable[..., ReferentialAECEnv]


def constructors_for(build_game: Callable[..., ReferentialGame], name: str) -> Constructors:
    """Entry points whose keyword arguments are ``split``, ``render_mode`` and the game's own.

    Args:
        build_game: a game class (or any callable taking the game's keyword arguments).
        name: the environment's versioned name (``metadata["name"]``), e.g. ``"colours_v0"``.
    """

    def raw_env(*, split: str = "train", render_mode: str | None = None, **game_kwargs: Any) -> ReferentialAECEnv:
        env = ReferentialAECEnv(build_game(**game_kwargs), split=split, render_mode=render_mode)
        env.metadata = {**env.metadata, "name": name}
        return env

    def env(**kwargs: Any) -> Any:
        return wrappers.OrderEnforcingWrapper(raw_env(**kwargs))

    def parallel_env(*, split: str = "train", render_mode: str | None = None,
                     **game_kwargs: Any) -> ReferentialParallelEnv:
        penv = ReferentialParallelEnv(build_game(**game_kwargs), split=split, render_mode=render_mode)
        penv.metadata = {**penv.metadata, "name": name}
        return penv

    raw_env.__doc__ = env.__doc__ = parallel_env.__doc__ = f"Build the {name} environment."
    return Constructors(env=env, parallel_env=parallel_env, raw_env=raw_env)
