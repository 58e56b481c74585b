"""What every turn-based PettingZoo view here shares: per-role spaces, the AEC bookkeeping
of an episode start, the Parallel views' action checks, and a cheaper order-enforcing wrapper."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gymnasium import spaces
from pettingzoo.utils.wrappers import OrderEnforcingWrapper


class RoleSpaces:
    """Mixin for views that build ``observation_spaces`` / ``action_spaces`` once in
    ``__init__``: the accessors return the same objects every call (PettingZoo's API test
    checks identity)."""

    observation_spaces: dict[str, spaces.Space]
    action_spaces: dict[str, spaces.Space]

    def observation_space(self, agent: str) -> spaces.Space:
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> spaces.Space:
        return self.action_spaces[agent]


def start_aec_episode(env: Any) -> None:
    """Make every possible agent live with zero rewards, empty infos and no episode end."""
    env.agents = env.possible_agents[:]
    env.rewards = dict.fromkeys(env.agents, 0.0)
    env._cumulative_rewards = dict.fromkeys(env.agents, 0.0)
    env.terminations = dict.fromkeys(env.agents, False)
    env.truncations = dict.fromkeys(env.agents, False)
    env.infos = {agent: {} for agent in env.agents}
    env.agent_selection = env.agents[0]


def begin_aec_step(env: Any, action: Any) -> str | None:
    """PettingZoo's step prologue: a finished agent's step is consumed (returns None);
    otherwise returns the acting agent with its cumulative reward cleared."""
    agent = env.agent_selection
    if env.terminations[agent] or env.truncations[agent]:
        env._was_dead_step(action)
        return None
    env._cumulative_rewards[agent] = 0.0
    return agent


def check_parallel_actions(live_agents: list[str], actions: Mapping[str, Any], actor: str) -> None:
    """Raise ``ValueError`` for a step on a finished episode, actions of agents that are not
    live, or a missing action of the agent whose turn it is."""
    if not live_agents:
        raise ValueError("step() was called on a finished episode; call reset() first")
    unknown = sorted(set(actions) - set(live_agents))
    if unknown:
        raise ValueError(f"actions for {unknown} are not allowed; live agents are {live_agents}")
    if actor not in actions:
        raise ValueError(f"it is the {actor}'s turn but actions has no {actor!r} key")


class OrderEnforcing(OrderEnforcingWrapper):
    """PettingZoo's ``OrderEnforcingWrapper`` (same checks) with ``last()``, ``agents`` and
    ``agent_selection`` read from the wrapped env directly instead of through ``__getattr__``
    one attribute at a time: these are read several times per agent step, and the lookups
    were a third of the cost of a referential AEC step."""

    def _require_reset(self, name: str) -> None:
        if not self._has_reset:
            raise AttributeError(f"{name} cannot be accessed before reset")

    def last(self, observe: bool = True) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        self._require_reset("agent_selection")
        return self.env.last(observe)

    @property
    def agents(self) -> list[str]:
        self._require_reset("agents")
        return self.env.agents

    @property
    def agent_selection(self) -> str:
        self._require_reset("agent_selection")
        return self.env.agent_selection
