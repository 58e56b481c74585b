"""A batched role env as a Stable-Baselines3 ``VecEnv``, so SB3 collects B games per call, and
a pair of PPO models trained on them (:func:`ppo_pair`).

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

import gymnasium
import numpy as np
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices

from commchannels.envs.referential.vector import ROLES, ReferentialVectorEnv
from commchannels.registry import gym_id

# PPO for a one-reward game of a few steps: no discounting, a strong entropy bonus (the partner
# learns too), few epochs per rollout (each rollout is played against a partner that then moves)
PPO_KWARGS = {"learning_rate": 3e-3, "ent_coef": 0.03, "gamma": 1.0, "n_epochs": 4, "verbose": 0}


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


def role_vector_env(env_id: str, role: str, envs: int, seed: int, **game: Any) -> ReferentialVectorEnv:
    """``envs`` games of the registered referential game ``env_id`` seen from ``role``, flat
    observations (``gymnasium.make_vec`` of the role's Gymnasium id; ``game``: the env's options)."""
    return gymnasium.make_vec(gym_id(env_id, role), num_envs=envs, flatten=True, seed=seed, **game).unwrapped


def ppo_pair(env_id: str, game: dict[str, Any], envs: int, seed: int, n_steps: int = 8,
             **ppo_kwargs: Any) -> tuple[dict[str, SB3VecEnv], dict[str, PPO]]:
    """One PPO model per role, each on its role's vector env (``envs`` games per call) with the
    other model as its partner, *sampling* its actions: a greedy partner freezes the other role's
    exploration, and the pair stalls. Train them in turns (``model.learn(...,
    reset_num_timesteps=False)``); ``venvs[role].venv.policy(models[role])`` plays a role greedily.

    Args:
        env_id: a registered referential game (``"referential_v0"``).
        game: the env's options (``n_candidates``, ``vocab_size`` ...).
        envs: games per call B of each role's env.
        seed: seed of the envs and models (the receiver's use ``seed + 1``).
        n_steps: PPO's rollout length (steps of every game per update).
        **ppo_kwargs: override :data:`PPO_KWARGS` and the default ``batch_size``.
    """
    venvs = {role: SB3VecEnv(role_vector_env(env_id, role, envs, seed + i, **game)) for i, role in enumerate(ROLES)}
    options = {"batch_size": min(envs * n_steps, 512), **PPO_KWARGS, **ppo_kwargs}
    models = {role: PPO("MlpPolicy", venv, seed=seed + i, n_steps=n_steps, **options)
              for i, (role, venv) in enumerate(venvs.items())}
    venvs["sender"].venv.set_partner(venvs["receiver"].venv.policy(models["receiver"], deterministic=False))
    venvs["receiver"].venv.set_partner(venvs["sender"].venv.policy(models["sender"], deterministic=False))
    return venvs, models
