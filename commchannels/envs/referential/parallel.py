"""The PettingZoo Parallel view of a referential game, over the same game-at-a-time shells.

Both agents stay live for the whole episode and act every step, as the Parallel API requires,
but only one action counts per step: the sender's token while the message is being sent, the
receiver's guess on the final step. Every ``infos[agent]`` (after reset and after each step)
has the same keys and shapes, so libraries that turn infos into tensors (TorchRL's
``PettingZooWrapper``) can read them: ``is_turn`` (this agent's action counts at the next
step), ``correct`` (0.0 until the receiver has acted) and ``message`` (the ``(max_len,)`` tokens
sent so far, EOS-padded).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pettingzoo import ParallelEnv

from commchannels.envs.referential import views
from commchannels.envs.referential.game import ReferentialGame
from commchannels.envs.referential.single import one_game
from commchannels.envs.turns import RoleSpaces, check_parallel_actions


class ReferentialParallelEnv(RoleSpaces, ParallelEnv):
    """Parallel referential game (see the module docstring for the turn rule).

    Args:
        game: the game (objects and rules).
        split: ``"train"`` or ``"test"`` objects.
        render_mode: ``None``, ``"ansi"`` or ``"rgb_array"``.
        fast: see :class:`~commchannels.envs.referential.aec.ReferentialAECEnv`.
    """

    metadata = {"name": "referential_v0", "render_modes": list(views.RENDER_MODES), "render_fps": views.RENDER_FPS}

    def __init__(self, game: ReferentialGame, split: str = "train", render_mode: str | None = None,
                 fast: bool = True) -> None:
        views.check_render_mode(game, render_mode)
        self.game, self.render_mode = game, render_mode
        self.metadata = {**self.metadata, "render_modes": views.render_modes(game)}
        self.current = one_game(game, split, fast)
        self.possible_agents = list(views.AGENTS)
        self.agents: list[str] = []
        self.observation_spaces, self.action_spaces = views.build_spaces(game)
        self.state_space = views.build_state_space(self.observation_spaces)
        self._guess: Any = None

    def _observations(self) -> dict[str, dict[str, np.ndarray]]:
        return {agent: self.current.observe(agent) for agent in self.possible_agents}

    def _infos(self, actor: str | None, correct: float = 0.0) -> dict[str, dict[str, Any]]:
        message = self.current.message_array()
        return {agent: {"is_turn": agent == actor, "correct": correct, "message": message.copy()}
                for agent in self.possible_agents}

    def reset(self, seed: int | None = None, options: dict | None = None):
        self.current.reset(seed)
        self.agents = self.possible_agents[:]
        self._guess = None
        return self._observations(), self._infos("sender")

    def state(self) -> np.ndarray:
        return views.state(self.current, self.observation_spaces)

    def step(self, actions: dict[str, Any]):
        actor = "sender" if self.current.any_speaking else "receiver"
        check_parallel_actions(self.agents, actions, actor)
        value = views.parse_action(self.action_spaces[actor], actor, actions[actor])
        rewards = dict.fromkeys(self.agents, 0.0)
        done = False
        if actor == "sender":
            self.current.send(value)
            infos = self._infos("sender" if self.current.any_speaking else "receiver")
        else:
            result = self.current.guess(value)
            rewards = {agent: result[agent] for agent in self.agents}
            self._guess = value.tolist() if isinstance(value, np.ndarray) else value
            infos = self._infos(None, result["correct"])
            done = True
        observations = self._observations()
        terminations = dict.fromkeys(self.agents, done)
        truncations = dict.fromkeys(self.agents, False)
        if done:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def render(self) -> str | np.ndarray | None:
        return views.render(self.current, self.render_mode, self._guess)

    def close(self) -> None:
        pass
