"""A batched role env as a Stable-Baselines3 ``VecEnv``, so SB3 collects B games per call.

SB3's own ``DummyVecEnv`` steps B single-game envs one after the other in Python; this
``VecEnv`` steps B games of the batched core as tensor operations
(:class:`commchannels.envs.referential.vector.ReferentialVectorEnv`) and only builds SB3's
per-game ``infos`` list (``terminal_observation``, ``TimeLimit.truncated``, ``correct``).

    >>> import gymnasium, commchannels
    >>> from commchannels.wrappers.sb3 import SB3VecEnv
    >>> venv = SB3VecEnv(gymnasium.make_vec("commchannels/Referential-receiver-v0", num_envs=8,
    ...                                     debug=True, flatten=True))
    >>> venv.reset().shape
    (8, 36)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices

from commchannels.envs.referential.vector import ReferentialVectorEnv


class SB3VecEnv(VecEnv):
    """``venv`` (a :class:`ReferentialVectorEnv`) behind SB3's ``VecEnv`` interface.

    ``seed(s)`` then ``reset()`` reseeds the batch with ``s`` (SB3 passes ``s + i`` to game i of
    a ``DummyVecEnv``; here the B games share one generator).
    """

    def __init__(self, venv: ReferentialVectorEnv) -> None:
        venv = getattr(venv, "unwrapped", venv)
        if not isinstance(venv, ReferentialVectorEnv):
            raise ValueError(f"venv={venv!r} is not allowed; expected a ReferentialVectorEnv "
                             "(gymnasium.make_vec(<a commchannels referential role id>, num_envs=B))")
        self.venv = venv
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)
        self._actions: np.ndarray | None = None

    def reset(self):
        seed = self._seeds[0]
        observation, _ = self.venv.reset(seed=seed)
        self._reset_seeds()
        self._reset_options()
        return observation

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self):
        observation, reward, done, final = self.venv.step_batch(self._actions)
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        correct = final["correct"]
        if self.venv.flatten:
            for i in np.flatnonzero(done):
                infos[i] = {"terminal_observation": final["obs"][i], "TimeLimit.truncated": False,
                            "correct": float(correct[i])}
        else:
            for i in np.flatnonzero(done):
                infos[i] = {"terminal_observation": {k: v[i] for k, v in final["obs"].items()},
                            "TimeLimit.truncated": False, "correct": float(correct[i])}
        return observation, reward, done, infos

    def close(self) -> None:
        self.venv.close()

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None] * self.num_envs

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [getattr(self.venv, attr_name) for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self.venv, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs) -> list[Any]:
        result = getattr(self.venv, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]
