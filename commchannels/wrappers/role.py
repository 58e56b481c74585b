"""One agent of a PettingZoo AEC env as a single-agent Gymnasium env (the *role adapter*).

Single-agent RL libraries (Stable-Baselines3, CleanRL, ...) train one policy on a Gymnasium
env. SuperSuit's vector wrapper needs every agent to share one observation and action space,
which a speaker and a listener never do; the adapter instead exposes one *role* and drives the
other agents with policies the caller passes (callables ``observation -> action``: a fixed
rule, :class:`RandomPolicy`, or another model's greedy ``predict`` via :meth:`RoleEnv.policy`).

The adapter's episode is the underlying episode seen from the role: ``reset`` plays the
partners until the role's first turn; each ``step`` applies the role's action, plays the
partners until the role's next turn (or the episode's end) and returns the role's reward
accumulated over those steps. In the referential game the sender therefore steps once per
token and the receiver once per episode.

    >>> import gymnasium, commchannels
    >>> env = gymnasium.make("commchannels/Referential-receiver-v0", debug=True)
    >>> obs, info = env.reset(seed=0)
    >>> sorted(obs)
    ['candidates', 'message']
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from commchannels.envs import forksafe  # noqa: F401  (forked workers run torch single-threaded)

Policy = Callable[[Any], Any]

# More partner steps than this between two turns of the role means a partner never yields.
_MAX_PARTNER_STEPS = 100_000


class RandomPolicy:
    """Uniformly random actions from ``space``, drawn from the policy's own seeded copy of it
    (respecting ``observation["action_mask"]`` where a Discrete agent has one)."""

    def __init__(self, space: spaces.Space, seed: int | None = None) -> None:
        self.space = copy.deepcopy(space)
        self.space.seed(seed)

    def seed(self, seed: int | None) -> None:
        """Reseed the policy's generator."""
        self.space.seed(seed)

    def __call__(self, observation: Any) -> Any:
        if isinstance(observation, dict) and "action_mask" in observation:
            return self.space.sample(mask=np.asarray(observation["action_mask"], dtype=np.int8))
        return self.space.sample()


class RoleEnv(gymnasium.Env):
    """The agent ``role`` of the AEC env ``env`` as a Gymnasium env.

    Args:
        env: a PettingZoo AEC env (e.g. ``commchannels.make("referential_v0")``).
        role: the agent this env exposes (one of ``env.possible_agents``).
        partners: policies of the other agents, ``{agent: observation -> action}``; agents
            left out play uniformly at random (seeded by ``reset(seed=...)``).
        flatten: flatten observations to one float vector (``gymnasium.spaces.flatten``:
            one-hot for discrete parts), for policies that do not take Dict observations.
    """

    def __init__(self, env: Any, role: str, partners: Mapping[str, Policy] | None = None,
                 flatten: bool = False) -> None:
        agents = list(env.possible_agents)
        if role not in agents:
            raise ValueError(f"role={role!r} is not an agent of {env}; expected one of {agents}")
        partners = dict(partners or {})
        unknown = sorted(set(partners) - set(agents) | ({role} & set(partners)))
        if unknown:
            raise ValueError(f"partners for {unknown} are not allowed; expected some of "
                             f"{[a for a in agents if a != role]}")
        self.env, self.role, self.flatten = env, role, bool(flatten)
        self.partners: dict[str, Policy] = {
            agent: partners.get(agent) or RandomPolicy(env.action_space(agent))
            for agent in agents if agent != role
        }
        self._raw_observation_space = env.observation_space(role)
        self.observation_space = self._raw_observation_space
        if self.flatten:
            flat = spaces.flatten_space(self._raw_observation_space)
            self.observation_space = spaces.Box(flat.low.astype(np.float32), flat.high.astype(np.float32),
                                                dtype=np.float32)
        self.action_space = env.action_space(role)
        self.render_mode = getattr(env.unwrapped, "render_mode", None)
        self.metadata = {"render_modes": list(env.metadata.get("render_modes", [])),
                         "render_fps": env.metadata.get("render_fps", 1)}
        self._started = False

    # ----------------------------------------------------------------- policies
    def set_partner(self, agent: str, policy: Policy) -> None:
        """Let ``policy`` drive ``agent`` from the next step on (e.g. a model being trained)."""
        if agent not in self.partners:
            raise ValueError(f"agent={agent!r} is not a partner of {self.role!r}; expected one of "
                             f"{list(self.partners)}")
        self.partners[agent] = policy

    def transform(self, observation: Any) -> Any:
        """The role's raw observation as this env returns it (flattened if ``flatten``)."""
        if self.flatten:
            return spaces.flatten(self._raw_observation_space, observation).astype(np.float32)
        return observation

    def policy(self, model: Any, deterministic: bool = True) -> Policy:
        """A partner policy for *other* adapters: ``model`` (anything with SB3's
        ``predict(obs, deterministic=...)``) trained on this env, acting on raw observations."""
        def act(observation: Any) -> Any:
            return model.predict(self.transform(observation), deterministic=deterministic)[0]
        return act

    # ----------------------------------------------------------------- Gymnasium API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            # partners' generators follow the adapter's, so one seed fixes the whole episode
            for partner in self.partners.values():
                if isinstance(partner, RandomPolicy):
                    partner.seed(int(self.np_random.integers(2**31)))
        self.env.reset(seed=seed, options=options)
        self._started = True
        self._play_partners()
        if self._role_done():
            raise RuntimeError(f"the episode ended before {self.role!r} acted; the role adapter "
                               f"needs a role that acts in every episode")
        return self._observation(), dict(self.env.infos.get(self.role, {}))

    def step(self, action: Any):
        if not self._started:
            raise RuntimeError("step() was called before reset()")
        if self._role_done():
            raise RuntimeError("step() was called after the episode ended; call reset() first")
        if self.env.agent_selection != self.role:
            raise RuntimeError(f"it is {self.env.agent_selection!r}'s turn, not {self.role!r}'s")
        self.env.step(action)
        self._play_partners()
        # PettingZoo's per-agent return since the agent last acted (what ``last()`` reports)
        reward = self.env._cumulative_rewards.get(self.role, 0.0)
        terminated = bool(self.env.terminations.get(self.role, True))
        truncated = bool(self.env.truncations.get(self.role, False)) and not terminated
        info = dict(self.env.infos.get(self.role, {}))
        return self._observation(), float(reward), terminated, truncated, info

    def render(self):
        return self.env.render()

    def close(self) -> None:
        self.env.close()

    # ----------------------------------------------------------------- internals
    def _role_done(self) -> bool:
        return (self.role not in self.env.agents or self.env.terminations[self.role]
                or self.env.truncations[self.role])

    def _observation(self) -> Any:
        return self.transform(self.env.observe(self.role))

    def _play_partners(self) -> None:
        """Step the partners until it is the role's turn or the role is done."""
        for _ in range(_MAX_PARTNER_STEPS):
            if self._role_done() or self.env.agent_selection == self.role:
                return
            agent = self.env.agent_selection
            if self.env.terminations[agent] or self.env.truncations[agent]:
                self.env.step(None)  # PettingZoo removes a finished agent with a None action
            else:
                self.env.step(self.partners[agent](self.env.observe(agent)))
        raise RuntimeError(f"the partners took {_MAX_PARTNER_STEPS} steps without yielding to {self.role!r}")


def make_role_env(env_id: str, role: str, partners: Mapping[str, Policy] | None = None,
                  flatten: bool = False, debug: bool = False, render_mode: str | None = None,
                  **env_kwargs: Any) -> RoleEnv:
    """A :class:`RoleEnv` over the registered env ``env_id`` (the entry point of the
    Gymnasium ids ``commchannels/<Name>-<role>-vN``).

    Args:
        env_id: a registered id, e.g. ``"referential_v0"``.
        role: the agent to expose.
        partners: see :class:`RoleEnv` (random partners by default).
        flatten: see :class:`RoleEnv`.
        debug: build the env from its spec's small ``debug_kwargs``.
        render_mode: passed to the env.
        **env_kwargs: the env's own arguments.
    """
    from commchannels.registry import make

    env = make(env_id, debug=debug, render_mode=render_mode, **env_kwargs)
    return RoleEnv(env, role, partners=partners, flatten=flatten)
