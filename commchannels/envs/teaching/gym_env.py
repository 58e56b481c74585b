"""The Gymnasium single-agent view: the teacher with a passive student (one environment over
:class:`TeachingCore`), registered as ``commchannels/Teaching-v0`` for SB3 and friends."""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np

from commchannels.envs.actions import action_array
from commchannels.envs.teaching import views
from commchannels.envs.teaching.core import TeachingCore
from commchannels.envs.teaching.settings import TeachingSettings


class TeachingGymEnv(gymnasium.Env):
    """The teacher's view as a Gymnasium env (keyword arguments: :class:`TeachingSettings`,
    except ``student_speaks``, plus ``render_mode``).

    ``info`` after each step holds ``accuracy``, ``loss``, ``sgd_steps``, ``diverged``, ``reached``.
    """

    metadata = {"render_modes": list(views.RENDER_MODES), "render_fps": views.RENDER_FPS}

    def __init__(self, render_mode: str | None = None, **kwargs: Any) -> None:
        if kwargs.get("student_speaks"):
            raise ValueError("student_speaks=True is not allowed in the Gymnasium view (single agent); "
                             "use teaching_v0.env or parallel_env")
        views.check_render_mode(render_mode)
        self.render_mode = render_mode
        self.core = TeachingCore(TeachingSettings(**kwargs), n_envs=1)
        _, actions = views.build_spaces(self.core)
        self.observation_space = gymnasium.spaces.Box(0.0, 1.0, (self.core.teacher_obs_dim,), np.float32)
        self.action_space = actions["teacher"]

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.core.reset(seed)
        return views.observe(self.core, "teacher"), {}

    def step(self, action: Any):
        out = self.core.step(action_array("teacher", action, self.action_space)[None])
        obs = views.observe(self.core, "teacher")
        info = views.directive_info(self.core, out)
        return (obs, float(out["reward"][0]), bool(out["terminated"][0]), bool(out["truncated"][0]), info)

    def render(self) -> str | np.ndarray | None:
        return views.render(self.core, self.render_mode)
