"""Adapters between commchannels' PettingZoo envs and RL libraries: one role as a Gymnasium env
(:mod:`~commchannels.wrappers.role`), flat spaces shared by every agent
(:mod:`~commchannels.wrappers.flat`), and a batched role env as an SB3 ``VecEnv``
(:mod:`~commchannels.wrappers.sb3`)."""

from commchannels.wrappers.flat import FlatAECWrapper, FlatParallelWrapper
from commchannels.wrappers.role import RandomPolicy, RoleEnv, make_role_env

__all__ = ["FlatAECWrapper", "FlatParallelWrapper", "RandomPolicy", "RoleEnv", "make_role_env"]
