"""The PettingZoo AEC view: one teaching environment over :class:`TeachingCore` (B=1).

Passive student: the only agent is ``teacher``, one directive per turn. Speaking student:
``student`` reports, then ``teacher`` directs; both receive the directive's shared reward.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pettingzoo import AECEnv

from commchannels.envs.actions import action_array
from commchannels.envs.teaching import views
from commchannels.envs.teaching.core import TeachingCore
from commchannels.envs.teaching.settings import TeachingSettings
from commchannels.envs.turns import RoleSpaces, begin_aec_step, start_aec_episode


class TeachingAECEnv(RoleSpaces, AECEnv):
    """Agent-environment-cycle teaching environment.

    Args:
        settings: the rules.
        render_mode: ``None``, ``"ansi"`` or ``"rgb_array"``.
    """

    metadata = {"name": "teaching_v0", "render_modes": list(views.RENDER_MODES), "render_fps": views.RENDER_FPS,
                "is_parallelizable": False}

    def __init__(self, settings: TeachingSettings, render_mode: str | None = None) -> None:
        super().__init__()
        views.check_render_mode(render_mode)
        self.render_mode = render_mode
        self.core = TeachingCore(settings, n_envs=1)
        self.possible_agents = views.agents_of(settings)
        self.observation_spaces, self.action_spaces = views.build_spaces(self.core)
        self.state_space = views.build_state_space(self.core)

    def reset(self, seed: int | None = None, options: dict | None = None) -> None:
        self.core.reset(seed)
        start_aec_episode(self)

    def observe(self, agent: str) -> np.ndarray:
        return views.observe(self.core, agent)

    def state(self) -> np.ndarray:
        return views.state(self.core)

    def step(self, action: Any) -> None:
        agent = begin_aec_step(self, action)
        if agent is None:
            return
        self._clear_rewards()
        if agent == "student":
            self.core.report(action_array(agent, action, self.action_spaces[agent])[None])
            self.agent_selection = "teacher"
            return
        out = self.core.step(action_array(agent, action, self.action_spaces[agent])[None])
        reward = float(out["reward"][0])
        self.rewards = dict.fromkeys(self.agents, reward)
        self.terminations = dict.fromkeys(self.agents, bool(out["terminated"][0]))
        self.truncations = dict.fromkeys(self.agents, bool(out["truncated"][0]))
        info = views.directive_info(self.core, out)
        self.infos = {a: dict(info) for a in self.agents}
        self._accumulate_rewards()
        self.agent_selection = self.agents[0]

    def render(self) -> str | np.ndarray | None:
        return views.render(self.core, self.render_mode)

    def close(self) -> None:
        pass
