"""The PettingZoo Parallel view over the same :class:`TeachingCore` (B=1).

Passive student: every step is one directive by ``teacher``. Speaking student: steps
alternate between a *report* step (the student's action counts, the teacher's is ignored) and a
*directive* step (the teacher's action counts, the student's is ignored), so the teacher always
directs on the report just sent, as in the AEC turn order. Every ``infos[agent]`` (after reset
and after each step) has the same keys, so libraries that turn infos into tensors (TorchRL's
``PettingZooWrapper``) can read them: ``is_turn`` (this agent's action counts at the next step)
and the student's current ``accuracy``, ``loss``, ``sgd_steps``, ``diverged``, ``reached``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pettingzoo import ParallelEnv

from commchannels.envs.actions import action_array
from commchannels.envs.teaching import views
from commchannels.envs.teaching.core import TeachingCore
from commchannels.envs.teaching.settings import TeachingSettings
from commchannels.envs.turns import RoleSpaces, check_parallel_actions


class TeachingParallelEnv(RoleSpaces, ParallelEnv):
    """Parallel teaching environment (see the module docstring for the turn rule).

    Args:
        settings: the rules.
        render_mode: ``None``, ``"ansi"`` or ``"rgb_array"``.
    """

    metadata = {"name": "teaching_v0", "render_modes": list(views.RENDER_MODES), "render_fps": views.RENDER_FPS}

    def __init__(self, settings: TeachingSettings, render_mode: str | None = None) -> None:
        views.check_render_mode(render_mode)
        self.render_mode = render_mode
        self.core = TeachingCore(settings, n_envs=1)
        self.possible_agents = views.agents_of(settings)
        self.agents: list[str] = []
        self.observation_spaces, self.action_spaces = views.build_spaces(self.core)
        self.state_space = views.build_state_space(self.core)
        self._turn = "teacher"

    def _observations(self) -> dict[str, np.ndarray]:
        return {agent: views.observe(self.core, agent) for agent in self.possible_agents}

    def _infos(self, agents: list[str]) -> dict[str, dict[str, Any]]:
        info = views.state_info(self.core)
        return {agent: {"is_turn": agent == self._turn, **info} for agent in agents}

    def reset(self, seed: int | None = None, options: dict | None = None):
        self.core.reset(seed)
        self.agents = self.possible_agents[:]
        self._turn = self.agents[0]
        return self._observations(), self._infos(self.agents)

    def state(self) -> np.ndarray:
        return views.state(self.core)

    def step(self, actions: dict[str, Any]):
        check_parallel_actions(self.agents, actions, self._turn)
        rewards = dict.fromkeys(self.agents, 0.0)
        terminated = truncated = False
        if self._turn == "student":
            self.core.report(action_array("student", actions["student"], self.action_spaces["student"])[None])
            self._turn = "teacher"
        else:
            out = self.core.step(action_array("teacher", actions["teacher"], self.action_spaces["teacher"])[None])
            rewards = dict.fromkeys(self.agents, float(out["reward"][0]))
            terminated, truncated = bool(out["terminated"][0]), bool(out["truncated"][0])
            self._turn = self.agents[0] if not (terminated or truncated) else ""
        infos = self._infos(self.agents)
        terminations = dict.fromkeys(self.agents, terminated)
        truncations = dict.fromkeys(self.agents, truncated)
        observations = {agent: views.observe(self.core, agent) for agent in self.agents}
        if terminated or truncated:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def render(self) -> str | np.ndarray | None:
        return views.render(self.core, self.render_mode)

    def close(self) -> None:
        pass
