"""What the AEC, Parallel and Gymnasium views share: agents, spaces, observations and
rendering of a one-environment :class:`TeachingCore`."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from commchannels.config import check_choice
from commchannels.envs.teaching.core import TeachingCore
from commchannels.envs.teaching.settings import TeachingSettings

RENDER_MODES = ("ansi",)


def check_render_mode(render_mode: str | None) -> None:
    """Raise ``ValueError`` unless ``render_mode`` is ``None`` or ``"ansi"``."""
    if render_mode is not None:
        check_choice("render_mode", render_mode, RENDER_MODES)


def agents_of(settings: TeachingSettings) -> list[str]:
    """``["teacher"]`` with a passive student; ``["student", "teacher"]`` (turn order) otherwise."""
    return ["student", "teacher"] if settings.student_speaks else ["teacher"]


def build_spaces(core: TeachingCore) -> tuple[dict[str, spaces.Space], dict[str, spaces.Space]]:
    """Observation and action spaces of every agent (built once per env)."""
    observation_spaces: dict[str, spaces.Space] = {
        "teacher": spaces.Box(0.0, 1.0, (core.teacher_obs_dim,), np.float32)}
    action_spaces: dict[str, spaces.Space] = {"teacher": spaces.MultiDiscrete(list(core.action_nvec))}
    if core.settings.student_speaks:
        observation_spaces["student"] = spaces.Box(0.0, 1.0, (core.stats_dim,), np.float32)
        action_spaces["student"] = spaces.MultiDiscrete(list(core.report_nvec))
    return observation_spaces, action_spaces


def observe(core: TeachingCore, agent: str) -> np.ndarray:
    """The observation of ``agent`` in environment 0, as float32 numpy."""
    obs = core.teacher_observation() if agent == "teacher" else core.student_observation()
    return obs[0].numpy().astype(np.float32)


def directive_info(core: TeachingCore, out: dict[str, Any]) -> dict[str, Any]:
    """The ``info`` entries of environment 0 after a directive."""
    return {"accuracy": float(out["accuracy"][0]), "loss": float(out["loss"][0]),
            "sgd_steps": int(out["sgd_steps"][0]), "diverged": bool(out["diverged"][0]),
            "reached": bool(out["reached"][0])}


def render(core: TeachingCore, render_mode: str | None) -> str | None:
    """Environment 0 as text (``"ansi"``), or nothing."""
    return core.describe(0) if render_mode == "ansi" else None
