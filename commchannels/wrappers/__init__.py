"""Adapters between commchannels' PettingZoo envs and single-agent RL libraries."""

from commchannels.wrappers.role import RandomPolicy, RoleEnv, make_role_env

__all__ = ["RandomPolicy", "RoleEnv", "make_role_env"]
