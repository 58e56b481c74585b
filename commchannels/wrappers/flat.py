"""Flat observations and one action space shared by every agent (``flatten=True`` on ``env()``
and ``parallel_env()``), for parameter-sharing learners (CleanRL-style PPO) and SuperSuit.

Every agent then observes a ``Box((D + n_agents,), float32)``: its own observation flattened by
``gymnasium.spaces.flatten`` (one-hot for discrete parts), zero-padded to the longest agent's
length D, followed by a one-hot *agent indicator* (agent order: ``possible_agents``). Every
agent acts in one ``Discrete(A)``, A the largest agent's action count: a ``MultiDiscrete``
action is numbered in mixed radix (first component most significant, as ``numpy.ravel_multi_index``),
and an action at or beyond an agent's own count acts as action 0 (SuperSuit's
``pad_action_space_v0`` convention). ``infos[agent]["action_mask"]`` (int8, length A) marks the
agent's own actions, so masked policies never pick a padded one.

SuperSuit's ``flatten_v0``, ``pad_observations_v0``, ``agent_indicator_v0``, ``black_death_v3``
and ``pettingzoo_env_to_vec_env_v1`` accept these envs (``tests/wrappers/test_flat.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo.utils.wrappers import BaseParallelWrapper, BaseWrapper

from commchannels.envs.actions import action_array

MAX_FLAT_ACTIONS = 2**20  # a shared policy head larger than this is a mistake, not a choice


def action_count(agent: str, space: spaces.Space) -> int:
    """How many actions ``space`` has once numbered (``Discrete`` or ``MultiDiscrete``)."""
    if isinstance(space, spaces.Discrete):
        return int(space.n)
    if isinstance(space, spaces.MultiDiscrete):
        count = int(np.prod(np.asarray(space.nvec, dtype=object)))
        if count > MAX_FLAT_ACTIONS:
            raise ValueError(f"flatten=True cannot number the {count} joint actions of {agent}'s {space}; expected "
                             f"at most {MAX_FLAT_ACTIONS} (use flatten=False)")
        return count
    raise ValueError(f"flatten=True supports Discrete and MultiDiscrete actions; {agent} has {space}")


class FlatLayout:
    """The flat spaces of one env and the conversions to and from them.

    Args:
        agents: the env's ``possible_agents``.
        observation_spaces: each agent's own observation space.
        action_spaces: each agent's own action space.
    """

    def __init__(self, agents: list[str], observation_spaces: dict[str, spaces.Space],
                 action_spaces: dict[str, spaces.Space]) -> None:
        self.agents = list(agents)
        self.raw_observation_spaces, self.raw_action_spaces = observation_spaces, action_spaces
        flat = {agent: spaces.flatten_space(observation_spaces[agent]) for agent in self.agents}
        self.sizes = {agent: int(flat[agent].shape[0]) for agent in self.agents}
        self.width = max(self.sizes.values())
        low = np.zeros(self.width + len(self.agents), np.float32)  # padding is 0: inside every range
        high = np.zeros_like(low)
        for agent, box in flat.items():
            size = self.sizes[agent]
            low[:size] = np.minimum(low[:size], box.low)
            high[:size] = np.maximum(high[:size], box.high)
        high[self.width:] = 1.0
        self.observation_space = spaces.Box(low, high, dtype=np.float32)
        self.counts = {agent: action_count(agent, action_spaces[agent]) for agent in self.agents}
        self.action_space = spaces.Discrete(max(self.counts.values()))
        self.masks = {}
        for agent, count in self.counts.items():
            mask = (np.arange(self.action_space.n) < count).astype(np.int8)
            mask.flags.writeable = False
            self.masks[agent] = mask

    def observation(self, agent: str, observation: Any) -> np.ndarray:
        """``agent``'s own observation in the flat space."""
        out = np.zeros(self.observation_space.shape, np.float32)
        out[: self.sizes[agent]] = spaces.flatten(self.raw_observation_spaces[agent], observation)
        out[self.width + self.agents.index(agent)] = 1.0
        return out

    def action(self, agent: str, action: Any) -> Any:
        """A flat action as ``agent``'s own (an int, or an int64 array for ``MultiDiscrete``)."""
        value = int(action_array(agent, action, self.action_space))
        if not 0 <= value < self.action_space.n:
            raise ValueError(f"{agent} action {value} is out of range; expected 0 <= action < {self.action_space.n}")
        if value >= self.counts[agent]:
            value = 0  # a padded action (SuperSuit's convention)
        space = self.raw_action_spaces[agent]
        if isinstance(space, spaces.Discrete):
            return int(space.start) + value
        return np.array(np.unravel_index(value, tuple(int(n) for n in space.nvec)), dtype=np.int64)

    def infos(self, infos: dict[str, dict]) -> dict[str, dict]:
        """``infos`` with each agent's ``action_mask`` added."""
        return {agent: {**info, "action_mask": self.masks[agent]} for agent, info in infos.items()}


class _FlatSpaces:
    """What both flat wrappers share: the layout of the wrapped env's spaces, and every agent's
    space is the layout's one."""

    def _build_layout(self, env: Any) -> None:
        self.layout = FlatLayout(env.possible_agents, {a: env.observation_space(a) for a in env.possible_agents},
                                 {a: env.action_space(a) for a in env.possible_agents})

    def observation_space(self, agent: str) -> spaces.Box:
        return self.layout.observation_space

    def action_space(self, agent: str) -> spaces.Discrete:
        return self.layout.action_space


class FlatAECWrapper(_FlatSpaces, BaseWrapper):
    """An AEC env with flat observations, one ``Discrete`` action space and agent indicators."""

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        self._build_layout(env)

    def observe(self, agent: str) -> np.ndarray:
        return self.layout.observation(agent, self.env.observe(agent))

    @property
    def infos(self) -> dict[str, dict]:
        return self.layout.infos(self.env.infos)

    def step(self, action: Any) -> None:
        agent = self.env.agent_selection
        if self.env.terminations[agent] or self.env.truncations[agent]:
            self.env.step(action)  # a finished agent's step (None)
        else:
            self.env.step(self.layout.action(agent, action))


class FlatParallelWrapper(_FlatSpaces, BaseParallelWrapper):
    """A Parallel env with flat observations, one ``Discrete`` action space and agent indicators."""

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        self._build_layout(env)

    def _observations(self, observations: dict[str, Any]) -> dict[str, np.ndarray]:
        return {agent: self.layout.observation(agent, obs) for agent, obs in observations.items()}

    def reset(self, seed: int | None = None, options: dict | None = None):
        observations, infos = self.env.reset(seed=seed, options=options)
        return self._observations(observations), self.layout.infos(infos)

    def step(self, actions: dict[str, Any]):
        raw = {agent: self.layout.action(agent, action) if agent in self.layout.counts else action
               for agent, action in actions.items()}
        observations, rewards, terminations, truncations, infos = self.env.step(raw)
        return self._observations(observations), rewards, terminations, truncations, self.layout.infos(infos)


def flatten_aec(env: Any) -> FlatAECWrapper:
    """``env`` (a raw AEC env) with flat spaces (see the module docstring)."""
    return FlatAECWrapper(env)


def flatten_parallel(env: Any) -> FlatParallelWrapper:
    """``env`` (a Parallel env) with flat spaces (see the module docstring)."""
    return FlatParallelWrapper(env)
