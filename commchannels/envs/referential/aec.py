"""The PettingZoo AEC view of a referential game: one game, the sender acts one token per
turn, then the receiver acts once. A thin shell over the game being played
(:mod:`commchannels.envs.referential.single`: a numpy fast path, or the batched core at B=1)."""

from __future__ import annotations

from typing import Any

import numpy as np
from pettingzoo import AECEnv

from commchannels.envs.referential import views
from commchannels.envs.referential.game import ReferentialGame
from commchannels.envs.referential.single import one_game
from commchannels.envs.turns import RoleSpaces, begin_aec_step, start_aec_episode


class ReferentialAECEnv(RoleSpaces, AECEnv):
    """Agent-environment-cycle referential game.

    Args:
        game: the game (objects and rules).
        split: ``"train"`` or ``"test"`` objects.
        render_mode: ``None``, ``"ansi"`` or ``"rgb_array"``.
        fast: play each game with the numpy fast path (default) rather than the batched core
            at B=1; both give identical trajectories.
    """

    metadata = {"name": "referential_v0", "render_modes": list(views.RENDER_MODES),
                "render_fps": views.RENDER_FPS, "is_parallelizable": False}

    def __init__(self, game: ReferentialGame, split: str = "train", render_mode: str | None = None,
                 fast: bool = True) -> None:
        super().__init__()
        views.check_render_mode(game, render_mode)
        self.game, self.render_mode = game, render_mode
        self.metadata = {**self.metadata, "render_modes": views.render_modes(game)}
        self.current = one_game(game, split, fast)
        self.possible_agents = list(views.AGENTS)
        self.observation_spaces, self.action_spaces = views.build_spaces(game)
        self.state_space = views.build_state_space(self.observation_spaces)
        self._guess: Any = None

    def reset(self, seed: int | None = None, options: dict | None = None) -> None:
        self.current.reset(seed)
        start_aec_episode(self)
        self._guess = None

    def observe(self, agent: str) -> dict[str, np.ndarray]:
        return self.current.observe(agent)

    def state(self) -> np.ndarray:
        return views.state(self.current, self.observation_spaces)

    def step(self, action: Any) -> None:
        agent = begin_aec_step(self, action)
        if agent is None:
            return
        value = views.parse_action(self.action_spaces[agent], agent, action)
        if agent == "sender":
            self.current.send(value)
            if not self.current.any_speaking:
                self.agent_selection = "receiver"
        else:
            rewards = self.current.guess(value)
            self.rewards = {agent: rewards[agent] for agent in self.agents}
            self._guess = value.tolist() if isinstance(value, np.ndarray) else value
            self.terminations = dict.fromkeys(self.agents, True)
            info = views.end_info(self.current)
            self.infos = {a: dict(info) for a in self.agents}
            self._accumulate_rewards()
            self.agent_selection = "sender"

    def render(self) -> str | np.ndarray | None:
        return views.render(self.current, self.render_mode, self._guess)

    def close(self) -> None:
        pass
