"""What the AEC, Parallel and Gymnasium views share: agents, spaces, the global state,
observations, infos and rendering of a one-environment :class:`TeachingCore`."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from commchannels.config import check_choice
from commchannels.envs import forksafe  # noqa: F401  (forked workers run torch single-threaded)
from commchannels.envs.teaching.core import TeachingCore
from commchannels.envs.teaching.settings import TeachingSettings

RENDER_MODES = ("ansi", "rgb_array")
RENDER_FPS = 4  # frames (directives) per second of a rendered episode (metadata["render_fps"])


def check_render_mode(render_mode: str | None) -> None:
    """Raise ``ValueError`` unless ``render_mode`` is ``None``, ``"ansi"`` or ``"rgb_array"``."""
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


def build_state_space(core: TeachingCore) -> spaces.Box:
    """The global state (for centralised critics): every agent's observation, concatenated in
    agent order (with a passive student, the teacher's observation)."""
    size = core.teacher_obs_dim + (core.stats_dim if core.settings.student_speaks else 0)
    return spaces.Box(0.0, 1.0, (size,), np.float32)


def state(core: TeachingCore) -> np.ndarray:
    """The global state of environment 0 (see :func:`build_state_space`)."""
    if not core.is_reset:
        raise ValueError("state() was called before reset()")
    agents = agents_of(core.settings)
    return np.concatenate([observe(core, agent) for agent in agents])


def observe(core: TeachingCore, agent: str) -> np.ndarray:
    """The observation of ``agent`` in environment 0, as float32 numpy."""
    obs = core.teacher_observation() if agent == "teacher" else core.student_observation()
    return obs[0].numpy().astype(np.float32)


def directive_info(core: TeachingCore, out: dict[str, Any]) -> dict[str, Any]:
    """The ``info`` entries of environment 0 after a directive."""
    return {"accuracy": float(out["accuracy"][0]), "loss": float(out["loss"][0]),
            "sgd_steps": int(out["sgd_steps"][0]), "diverged": bool(out["diverged"][0]),
            "reached": bool(out["reached"][0])}


def state_info(core: TeachingCore) -> dict[str, Any]:
    """Environment 0's current ``accuracy``, ``loss``, ``sgd_steps``, ``diverged`` and
    ``reached`` (the Parallel view's infos after reset and every step)."""
    return {"accuracy": float(core.accuracy[0]), "loss": float(core.loss[0]),
            "sgd_steps": int(core.t[0]) * core.settings.updates_per_step, "diverged": bool(core.diverged[0]),
            "reached": bool(core.reached[0])}


def render_image(core: TeachingCore, scale: int = 8) -> np.ndarray:
    """Environment 0's statistics as a grey strip (``(H, W, 3)`` uint8): progress, loss,
    accuracy, per-class accuracy and the probe predictions, one cell each, white = 1."""
    if not core.is_reset:
        return np.zeros((scale, scale, 3), np.uint8)
    values = core.stats()[0].numpy()
    image = np.kron(values[None, :, None], np.ones((4 * scale, scale, 3)))
    return (image * 255).astype(np.uint8)


def render(core: TeachingCore, render_mode: str | None) -> str | np.ndarray | None:
    """Environment 0 as text (``"ansi"``), an image (``"rgb_array"``), or nothing."""
    if render_mode == "ansi":
        return core.describe(0)
    return render_image(core) if render_mode == "rgb_array" else None
