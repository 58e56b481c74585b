"""A native TorchRL environment over the batched referential core (``pip install -e '.[torchrl]'``).

:class:`ReferentialTorchRLEnv` is one more thin view of :class:`BatchedReferentialEnv`:
``batch_size=[B]``, B games stepped as tensor operations, in TorchRL's multi-agent layout
(the conventions of ``torchrl.envs.libs.vmas`` / ``pettingzoo``):

- two agent groups, ``sender`` and ``receiver``, one agent each (``group_map``), with nested
  keys: ``(group, "observation", part)`` of shape ``[B, 1, ...]`` (sender parts ``objects`` and
  ``message``; receiver parts ``message`` and, in discrimination, ``candidates``; the message is
  the core's encoding, token + 1, 0 where nothing was sent), ``(group, "action")``
  (``[B, 1]`` categorical, or ``[B, 1, n_attributes]`` in reconstruction), ``(group, "reward")``
  ``[B, 1, 1]`` and ``(group, "mask")`` ``[B, 1]``: True where it is that agent's turn (only the
  acting agent's action counts; the other's is ignored);
- ``done`` / ``terminated`` / ``truncated`` at the root, ``[B, 1]``: a game ends on the step its
  receiver guesses; ``env.rollout`` and collectors then redraw only the finished games (the
  ``_reset`` mask), and the others go on.

Each step is one turn of every game: games whose message is still being sent take the sender's
token; games whose message is complete take the receiver's guess and end. Rewards are the
game's own (``game.rewards``), given on the last step.

The core, its generator and its rules run on the CPU; ``device`` is where the tensordicts live
(observations are moved once per step, actions read back once per step).
"""

from __future__ import annotations

from typing import Any

import torch
from tensordict import TensorDict, TensorDictBase
from torchrl.data import Bounded, Categorical, Composite, MultiCategorical, Unbounded
from torchrl.envs import EnvBase

from commchannels.config import check_int
from commchannels.envs.referential.core import BatchedReferentialEnv
from commchannels.envs.referential.game import ReferentialGame

GROUPS = ("sender", "receiver")


class ReferentialTorchRLEnv(EnvBase):
    """B referential games as a TorchRL multi-agent env (see the module docstring).

    Args:
        game: the game (objects and rules).
        batch_size: games B stepped together.
        split: ``"train"`` or ``"test"`` objects.
        seed: seed of the core's generator (``env.set_seed`` reseeds it).
        device: where the tensordicts live (the core itself runs on the CPU).
    """

    def __init__(self, game: ReferentialGame, batch_size: int = 1024, split: str = "train",
                 seed: int | None = None, device: Any = "cpu") -> None:
        batch_size = check_int("batch_size", batch_size, 1)
        super().__init__(batch_size=torch.Size([batch_size]), device=device)
        self.game = game
        self.core = BatchedReferentialEnv(game, batch_size, split=split, seed=seed)
        self.group_map = {group: [group] for group in GROUPS}
        self._make_specs()

    # ----------------------------------------------------------------- specs
    def _make_specs(self) -> None:
        game, b, dev = self.game, self.batch_size, self.device
        shape = (*b, 1)
        low, high = game.feature_bounds

        def objects(n: int) -> Bounded:
            return Bounded(low, high, (*shape, n, *game.object_shape), dtype=torch.float32, device=dev)

        message = Bounded(0, game.vocab_size, (*shape, game.max_len), dtype=torch.int64, device=dev)
        parts = {"sender": {"objects": objects(game.sender_views), "message": message.clone()},
                 "receiver": {"message": message.clone()}}
        if game.mode == "discrimination":
            parts["receiver"]["candidates"] = objects(game.n_candidates)
            receiver_action: Any = Categorical(game.n_candidates, shape, dtype=torch.int64, device=dev)
        else:
            receiver_action = MultiCategorical(list(game.attribute_sizes), (*shape, game.n_attributes),
                                               dtype=torch.int64, device=dev)
        self.observation_spec = Composite(
            {group: Composite({"observation": Composite(parts[group], shape=shape, device=dev),
                               "mask": Categorical(2, shape, dtype=torch.bool, device=dev)},
                              shape=shape, device=dev) for group in GROUPS},
            shape=b, device=dev)
        actions = {"sender": Categorical(game.vocab_size, shape, dtype=torch.int64, device=dev),
                   "receiver": receiver_action}
        self.action_spec = Composite(
            {group: Composite({"action": actions[group]}, shape=shape, device=dev) for group in GROUPS},
            shape=b, device=dev)
        self.reward_spec = Composite(
            {group: Composite({"reward": Unbounded((*shape, 1), device=dev)}, shape=shape, device=dev)
             for group in GROUPS}, shape=b, device=dev)
        self.done_spec = Composite(
            {key: Categorical(2, (*b, 1), dtype=torch.bool, device=dev) for key in ("done", "terminated", "truncated")},
            shape=b, device=dev)

    @property
    def action_keys_by_group(self) -> dict[str, tuple[str, str]]:
        return {group: (group, "action") for group in GROUPS}

    # ----------------------------------------------------------------- TorchRL API
    def _set_seed(self, seed: int | None) -> None:
        if seed is not None:
            self.core.generator.manual_seed(int(seed))

    def _reset(self, tensordict: TensorDictBase | None = None, **kwargs: Any) -> TensorDictBase:
        reset = None if tensordict is None else tensordict.get("_reset", None)
        if reset is None or self.core.batch is None or bool(reset.all()):
            self.core.reset()
        else:
            self.core.reset_games(reset.reshape(-1).cpu())
        zeros = torch.zeros((*self.batch_size, 1), dtype=torch.bool)
        return self._output({"done": zeros, "terminated": zeros, "truncated": zeros})

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        core = self.core
        guessing = ~core.speaking  # games whose message was complete when this turn started
        reward = {group: torch.zeros(*self.batch_size) for group in GROUPS}
        if bool(guessing.any()):
            guesses = tensordict.get(("receiver", "action")).cpu()
            guesses = guesses.reshape(self.batch_size[0], -1).squeeze(-1)
            result = core.guess(guesses, games=guessing)
            reward = {group: result[group] for group in GROUPS}
        if core.any_speaking:
            core.send(tensordict.get(("sender", "action")).cpu().reshape(-1))
        done = guessing[:, None]
        out = self._output({"done": done, "terminated": done.clone(), "truncated": torch.zeros_like(done)})
        for group in GROUPS:
            out.set((group, "reward"), reward[group].reshape(*self.batch_size, 1, 1).to(self.device))
        return out

    def _output(self, dones: dict[str, torch.Tensor]) -> TensorDictBase:
        core, b, dev = self.core, self.batch_size[0], self.device
        speaking = core.speaking.clone()
        out = _tensordict({key: value.to(dev) for key, value in dones.items()}, [b], dev)
        for group in GROUPS:
            observation = {key: value[:, None].to(dev) for key, value in core.observation(group).items()}
            mask = speaking if group == "sender" else ~speaking
            # group entries have batch [B, 1]: one agent per group, TorchRL's multi-agent layout
            out[group] = _tensordict({"observation": _tensordict(observation, [b, 1], dev),
                                      "mask": mask[:, None].to(dev)}, [b, 1], dev)
        return out


def _tensordict(source: dict[str, Any], batch_size: list[int], device: Any) -> TensorDict:
    """A TensorDict of tensors whose shapes and devices are right by construction: without the
    constructor's per-value checks, which were a third of a step's cost at B=1024."""
    new = getattr(TensorDict, "_new_unsafe", None)
    if new is None:  # a tensordict without it: the checked constructor
        return TensorDict(source, batch_size=batch_size, device=device)
    return new(source, batch_size=torch.Size(batch_size), device=device)


def make_env(env_id: str = "referential_v0", batch_size: int = 1024, split: str = "train", seed: int | None = None,
             device: Any = "cpu", debug: bool = False, **env_kwargs: Any) -> ReferentialTorchRLEnv:
    """The TorchRL env of the registered referential game ``env_id`` (game options as keywords)."""
    from commchannels.registry import make

    game = make(env_id, debug=debug, **env_kwargs).unwrapped.game
    return ReferentialTorchRLEnv(game, batch_size=batch_size, split=split, seed=seed, device=device)
