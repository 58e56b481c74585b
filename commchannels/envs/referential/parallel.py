"""The PettingZoo Parallel view of a referential game, over the same batched core.

Both agents stay live for the whole episode and act every step, as the Parallel API requires,
but only one action counts per step: the sender's token while the message is being sent, the
receiver's guess on the final step. ``infos[agent]["turn"]`` names the agent whose action
counts at the next step.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pettingzoo import ParallelEnv

from commchannels.envs.referential import views
from commchannels.envs.referential.core import BatchedReferentialEnv
from commchannels.envs.referential.game import ReferentialGame
from commchannels.envs.turns import RoleSpaces, check_parallel_actions


class ReferentialParallelEnv(RoleSpaces, ParallelEnv):
    """Parallel referential game (see the module docstring for the turn rule).

    Args:
        game: the game (objects and rules).
        split: ``"train"`` or ``"test"`` objects.
        render_mode: ``None``, ``"ansi"`` or (image games) ``"rgb_array"``.
    """

    metadata = {"name": "referential_v0", "render_modes": list(views.RENDER_MODES)}

    def __init__(self, game: ReferentialGame, split: str = "train", render_mode: str | None = None) -> None:
        views.check_render_mode(game, render_mode)
        self.game, self.render_mode = game, render_mode
        # per instance: only image games render rgb_array (Gymnasium's checker tries every mode)
        self.metadata = {**self.metadata, "render_modes": views.render_modes(game)}
        self.core = BatchedReferentialEnv(game, batch_size=1, split=split)
        self.possible_agents = list(views.AGENTS)
        self.agents: list[str] = []
        self.observation_spaces, self.action_spaces = views.build_spaces(game)
        self._guess: Any = None

    def _observations(self) -> dict[str, dict[str, np.ndarray]]:
        return {agent: views.observe(self.core, agent) for agent in self.possible_agents}

    def reset(self, seed: int | None = None, options: dict | None = None):
        self.core.reset(seed)
        self.agents = self.possible_agents[:]
        self._guess = None
        infos = {agent: {"turn": "sender"} for agent in self.agents}
        return self._observations(), infos

    def step(self, actions: dict[str, Any]):
        actor = "sender" if self.core.any_speaking else "receiver"
        check_parallel_actions(self.agents, actions, actor)
        value = views.action_tensor(self.action_spaces[actor], actor, actions[actor])
        rewards = dict.fromkeys(self.agents, 0.0)
        done = False
        infos: dict[str, dict[str, Any]]
        if actor == "sender":
            self.core.send(value)
            turn = "sender" if self.core.any_speaking else "receiver"
            infos = {agent: {"turn": turn} for agent in self.agents}
        else:
            self._guess, rewards, info = views.finish_game(self.core, value)
            infos = {a: {"turn": None, **info} for a in self.agents}
            done = True
        observations = self._observations()
        terminations = dict.fromkeys(self.agents, done)
        truncations = dict.fromkeys(self.agents, False)
        if done:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def render(self) -> str | np.ndarray | None:
        return views.render(self.core, self.render_mode, self._guess)

    def close(self) -> None:
        pass
