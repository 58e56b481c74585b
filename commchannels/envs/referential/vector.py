"""One role of a referential game as a Gymnasium vector env over the batched core.

``gymnasium.make_vec("commchannels/Referential-receiver-v0", num_envs=1024)`` (the registered
``vector_entry_point``, the default vectorisation of every referential role) plays B games per
call as tensor operations in one :class:`BatchedReferentialEnv`: the rules are the core's, and
the view is what :class:`commchannels.wrappers.RoleEnv` shows of one game, B times over.

- The *partner* (the other role) is a batched policy, ``observation -> actions``: it gets the
  partner's raw observations as tensors shared with the core (``{"objects", "message"}`` for the
  sender, ``{"message", "candidates"}`` for the receiver, leading dimension B; do not modify
  them) and returns one action per game as a tensor. Default: uniformly random actions from the
  env's own generator (reseeded by ``reset(seed=...)``); :meth:`ReferentialVectorEnv.policy`
  turns an SB3 model trained on one role's vector env into the partner of the other's.
- Receiver: every episode is one step (the partner's message is complete when the receiver
  observes it); all B games end at each step and B new ones are drawn.
- Sender: one step per token; a game ends after its EOS or ``max_len`` tokens, when the partner
  guesses, and is then replaced by a new game (the others go on).
- Autoreset is Gymnasium's ``SAME_STEP`` mode: the observation returned for a finished game is
  the first one of its next game; ``infos["final_obs"]`` (an object array, entries for the
  finished games) holds the last one and ``infos["final_info"]["correct"]`` its outcome.
- ``flatten=True``: one float32 vector per game (``gymnasium.spaces.flatten`` of the role's
  Dict observation, one-hot message tokens), for ``MlpPolicy``.

:class:`commchannels.wrappers.sb3.SB3VecEnv` exposes it as a Stable-Baselines3 ``VecEnv``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from commchannels.config import MAX_SEED, check_bool, check_choice, check_int
from commchannels.envs.referential import views
from commchannels.envs.referential.core import BatchedReferentialEnv
from commchannels.envs.referential.game import ReferentialGame
from commchannels.seeding import torch_generator

Partner = Callable[[dict[str, torch.Tensor]], torch.Tensor]
ROLES = ("sender", "receiver")


class BatchFlattener:
    """``gymnasium.spaces.flatten`` for B rows at once, as tensor operations: ``(B, flatdim)``
    float32 (Box parts flattened, MultiDiscrete / Discrete parts one-hot) in the Dict space's
    key order. The layout is worked out once."""

    def __init__(self, space: spaces.Dict) -> None:
        self.parts: list[tuple[str, torch.Tensor | None, int]] = []
        for key, sub in space.spaces.items():
            if isinstance(sub, spaces.Box):
                self.parts.append((key, None, 0))
            elif isinstance(sub, (spaces.MultiDiscrete, spaces.Discrete)):
                nvec = np.atleast_1d(np.asarray(sub.nvec if isinstance(sub, spaces.MultiDiscrete) else sub.n))
                offsets = torch.as_tensor(np.concatenate([[0], np.cumsum(nvec)[:-1]]), dtype=torch.long)
                self.parts.append((key, offsets, int(nvec.sum())))
            else:
                raise ValueError(f"cannot flatten observation part {key!r} of space {sub}")

    def __call__(self, observation: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = []
        for key, offsets, width in self.parts:
            value = observation[key]
            batch = value.shape[0]
            if offsets is None:
                parts.append(value.reshape(batch, -1).float())
            else:
                onehot = torch.zeros(batch, width)
                onehot.scatter_(1, value.reshape(batch, -1).long() + offsets, 1.0)
                parts.append(onehot)
        return torch.cat(parts, dim=1)


class RandomPartner:
    """Uniformly random actions of ``space`` for every game, from its own generator."""

    def __init__(self, space: spaces.Space, seed: int | None = None) -> None:
        self.space = space
        self.generator = torch_generator(seed)

    def seed(self, seed: int) -> None:
        self.generator.manual_seed(int(seed))

    def __call__(self, observation: dict[str, torch.Tensor]) -> torch.Tensor:
        batch = next(iter(observation.values())).shape[0]
        if isinstance(self.space, spaces.Discrete):
            return torch.randint(int(self.space.n), (batch,), generator=self.generator)
        nvec = torch.as_tensor(np.asarray(self.space.nvec))
        return (torch.rand(batch, len(nvec), generator=self.generator) * nvec).long()


class ReferentialVectorEnv(VectorEnv):
    """B games of ``game`` seen from ``role`` (see the module docstring).

    Args:
        game: the game (objects and rules).
        role: ``"sender"`` or ``"receiver"``.
        num_envs: games per call B.
        partner: the other role's batched policy (default: random, see :class:`RandomPartner`).
        flatten: flat float32 observations instead of Dicts.
        split: ``"train"`` or ``"test"`` objects.
        seed: seed of the env's generators (``reset(seed=...)`` reseeds them).
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(self, game: ReferentialGame, role: str, num_envs: int, partner: Partner | None = None,
                 flatten: bool = False, split: str = "train", seed: int | None = None) -> None:
        check_choice("role", role, ROLES)
        self.num_envs = check_int("num_envs", num_envs, 1)
        self.game, self.role, self.flatten = game, role, check_bool("flatten", flatten)
        self.partner_role = ROLES[1 - ROLES.index(role)]
        self.core = BatchedReferentialEnv(game, self.num_envs, split=split, seed=seed)
        observation_spaces, action_spaces = views.build_spaces(game)
        self.raw_observation_space = observation_spaces[role]
        self._flattener = BatchFlattener(self.raw_observation_space)
        single = observation_spaces[role]
        if self.flatten:
            flat = spaces.flatten_space(single)
            single = spaces.Box(flat.low.astype(np.float32), flat.high.astype(np.float32), dtype=np.float32)
        self.single_observation_space, self.single_action_space = single, action_spaces[role]
        self.observation_space = batch_space(single, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.partner: Partner = partner or RandomPartner(action_spaces[self.partner_role],
                                                          seed=None if seed is None else seed + 1)
        self._observation: Any = None

    # ----------------------------------------------------------------- policies
    def set_partner(self, partner: Partner) -> None:
        """Let ``partner`` play the other role from the next step on."""
        self.partner = partner

    def transform(self, observation: dict[str, torch.Tensor]) -> Any:
        """Raw batched observations (tensors) as this env returns them (numpy; flat if ``flatten``)."""
        if self.flatten:
            return self._flattener(observation).numpy()
        return {key: observation[key].numpy().copy() for key in self.raw_observation_space.spaces}

    def policy(self, model: Any, deterministic: bool = True) -> Partner:
        """A partner for the *other* role's vector env: ``model`` (anything with SB3's
        ``predict(obs, deterministic=...)``) trained on this env, acting on all B games at once."""
        def act(observation: dict[str, torch.Tensor]) -> torch.Tensor:
            actions, _ = model.predict(self.transform(observation), deterministic=deterministic)
            return torch.as_tensor(np.asarray(actions, dtype=np.int64))
        return act

    # ----------------------------------------------------------------- Gymnasium API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            if isinstance(seed, (list, tuple)):
                raise ValueError(f"seed={seed!r} is not allowed; the B games share one generator: pass one int")
            seed = check_int("seed", seed, 0, MAX_SEED)
            if isinstance(self.partner, RandomPartner):
                self.partner.seed(seed + 1)
        self.core.reset(seed)
        if self.role == "receiver":
            self._play_sender()
        self._observation = self.transform(self.core.observation(self.role))
        return self._observation, {}

    def step(self, actions: Any):
        observation, reward, done, final = self.step_batch(actions)
        infos: dict[str, Any] = {}
        if done.any():
            final_obs = np.full(self.num_envs, None, dtype=object)
            rows = np.flatnonzero(done)
            if self.flatten:
                for i in rows:
                    final_obs[i] = final["obs"][i]
            else:
                for i in rows:
                    final_obs[i] = {key: value[i] for key, value in final["obs"].items()}
            infos = {"final_obs": final_obs, "_final_obs": done.copy(),
                     "final_info": {"correct": final["correct"], "_correct": done.copy()},
                     "_final_info": done.copy()}
        return observation, reward, done.copy(), np.zeros(self.num_envs, dtype=bool), infos

    def step_batch(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, dict[str, Any]]:
        """One step of every game, batched: ``(observations, rewards, done, final)`` where
        ``final`` holds the finished games' last ``obs`` and ``correct`` (the vector API and
        the SB3 ``VecEnv`` both format these)."""
        if self._observation is None:
            raise ValueError("step() was called before reset()")
        actions = torch.as_tensor(np.asarray(actions)) if not isinstance(actions, torch.Tensor) else actions
        if self.role == "receiver":
            result = self.core.guess(actions)
            done = np.ones(self.num_envs, dtype=bool)
        else:
            self.core.send(actions)
            finished = ~self.core.speaking
            done = finished.numpy().copy()
            result = None
            if done.any():
                guesses = self.partner(self.core.observation("receiver"))
                result = self.core.guess(guesses, games=finished)
        final_obs = self.transform(self.core.observation(self.role))  # the last observation of a finished game
        if self.role == "receiver":
            self.core.reset()
            self._play_sender()
        elif done.any():
            self.core.reset_games(torch.from_numpy(done))
        if result is None:
            reward = np.zeros(self.num_envs, dtype=np.float32)
            correct = reward
        else:
            reward, correct = result[self.role].numpy().copy(), result["correct"].numpy().copy()
        self._observation = self.transform(self.core.observation(self.role)) if done.any() else final_obs
        return self._observation, reward, done, {"obs": final_obs, "correct": correct}

    def close_extras(self, **kwargs: Any) -> None:
        pass

    # ----------------------------------------------------------------- internals
    def _play_sender(self) -> None:
        for _ in range(self.game.max_len):
            if not self.core.any_speaking:
                return
            self.core.send(self.partner(self.core.observation("sender")))


def make_role_vector_env(num_envs: int, env_id: str, role: str, partner: Partner | None = None,
                         flatten: bool = False, debug: bool = False, render_mode: str | None = None,
                         seed: int | None = None, **env_kwargs: Any) -> ReferentialVectorEnv:
    """The ``vector_entry_point`` of the Gymnasium ids ``commchannels/<Name>-<role>-vN`` of a
    referential game: ``gymnasium.make_vec(id, num_envs=B, **kwargs)``.

    Args:
        num_envs: games per call.
        env_id: a registered referential id, e.g. ``"referential_v0"``.
        role: the agent to expose.
        partner: see :class:`ReferentialVectorEnv` (random by default).
        flatten: flat observations.
        debug: build the game from its spec's small ``debug_kwargs``.
        render_mode: ``None`` (vector envs do not render).
        seed: seed of the env's generators.
        **env_kwargs: the env's own arguments (``split`` and the game's).
    """
    from commchannels.registry import make

    if render_mode is not None:
        raise ValueError(f"render_mode={render_mode!r} is not allowed for the batched vector env; expected None "
                         "(render a single env: gymnasium.make(...))")
    split = env_kwargs.pop("split", "train")
    game = make(env_id, debug=debug, **env_kwargs).unwrapped.game
    return ReferentialVectorEnv(game, role, num_envs, partner=partner, flatten=flatten, split=split, seed=seed)
