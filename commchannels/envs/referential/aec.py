"""The PettingZoo AEC view of a referential game: one game, the sender acts one token per
turn, then the receiver acts once. A thin shell over :class:`BatchedReferentialEnv`."""

from __future__ import annotations

from typing import Any

import numpy as np
from pettingzoo import AECEnv

from commchannels.envs.referential import views
from commchannels.envs.referential.core import BatchedReferentialEnv
from commchannels.envs.referential.game import ReferentialGame
from commchannels.envs.turns import RoleSpaces, begin_aec_step, start_aec_episode


class ReferentialAECEnv(RoleSpaces, AECEnv):
    """Agent-environment-cycle referential game.

    Args:
        game: the game (objects and rules).
        split: ``"train"`` or ``"test"`` objects.
        render_mode: ``None``, ``"ansi"`` or (image games) ``"rgb_array"``.
    """

    metadata = {"name": "referential_v0", "render_modes": list(views.RENDER_MODES),
                "is_parallelizable": False}

    def __init__(self, game: ReferentialGame, split: str = "train", render_mode: str | None = None) -> None:
        super().__init__()
        views.check_render_mode(game, render_mode)
        self.game, self.render_mode = game, render_mode
        # per instance: only image games render rgb_array (Gymnasium's checker tries every mode)
        self.metadata = {**self.metadata, "render_modes": views.render_modes(game)}
        self.core = BatchedReferentialEnv(game, batch_size=1, split=split)
        self.possible_agents = list(views.AGENTS)
        self.observation_spaces, self.action_spaces = views.build_spaces(game)
        self._guess: Any = None

    def reset(self, seed: int | None = None, options: dict | None = None) -> None:
        self.core.reset(seed)
        start_aec_episode(self)
        self._guess = None

    def observe(self, agent: str) -> dict[str, np.ndarray]:
        return views.observe(self.core, agent)

    def step(self, action: Any) -> None:
        agent = begin_aec_step(self, action)
        if agent is None:
            return
        value = views.action_tensor(self.action_spaces[agent], agent, action)
        if agent == "sender":
            self.core.send(value)
            if not self.core.any_speaking:
                self.agent_selection = "receiver"
        else:
            self._guess, self.rewards, info = views.finish_game(self.core, value)
            self.terminations = dict.fromkeys(self.agents, True)
            self.infos = {a: dict(info) for a in self.agents}
            self._accumulate_rewards()
            self.agent_selection = "sender"

    def render(self) -> str | np.ndarray | None:
        return views.render(self.core, self.render_mode, self._guess)

    def close(self) -> None:
        pass
