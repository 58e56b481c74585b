"""A native TorchRL environment over the batched teaching core (``pip install -e '.[torchrl]'``).

:class:`TeachingTorchRLEnv` is one more thin view of
:class:`~commchannels.envs.teaching.core.TeachingCore`: ``batch_size=[B]`` teaching
environments stepped as tensor operations, in the same multi-agent layout as
:class:`~commchannels.integrations.torchrl.ReferentialTorchRLEnv`:

- the agent groups of the PettingZoo views, one agent each (``group_map``): ``teacher``, and
  ``student`` when the student speaks (``student_speaks=True``);
- nested keys ``(group, "observation")`` ``[B, 1, dim]`` in [0, 1] (the teacher's observation;
  the student's statistics), ``(group, "action")`` ``[B, 1, 3]`` directives
  ``(bucket, lr level, target level)`` for the teacher and ``[B, 1, report_len]`` report tokens for
  the student, ``(group, "reward")`` ``[B, 1, 1]`` (the shared reward, as in the Parallel view)
  and ``(group, "mask")`` ``[B, 1]``: True where that agent's action counts at the next step;
- ``done`` / ``terminated`` / ``truncated`` at the root, ``[B, 1]``; collectors reset only the
  finished environments (``TeachingCore.reset(envs=...)``) and the others go on.

Turns follow the Parallel view: with a passive student every step is a directive; with a
speaking student each environment alternates a report step (the student's tokens are stored,
reward 0) and a directive step (the teacher's directive is applied to the student it reported on).
"""

from __future__ import annotations

from typing import Any

import torch
from tensordict import TensorDictBase
from torchrl.data import Bounded, Categorical, Composite, MultiCategorical, Unbounded
from torchrl.envs import EnvBase

from commchannels.config import check_int
from commchannels.envs.teaching.core import TeachingCore
from commchannels.envs.teaching.settings import TeachingSettings
from commchannels.envs.teaching.views import agents_of
from commchannels.integrations.torchrl import _tensordict


class TeachingTorchRLEnv(EnvBase):
    """B teaching environments as a TorchRL multi-agent env (see the module docstring).

    Args:
        settings: the rules (default: ``TeachingSettings(**kwargs)``).
        batch_size: environments B stepped together.
        seed: seed of the core's generator (``env.set_seed`` reseeds it).
        device: where the tensordicts live (the core itself runs on the CPU).
        **kwargs: :class:`TeachingSettings` fields, when ``settings`` is not given.
    """

    def __init__(self, settings: TeachingSettings | None = None, batch_size: int = 64, seed: int | None = None,
                 device: Any = "cpu", **kwargs: Any) -> None:
        batch_size = check_int("batch_size", batch_size, 1)
        super().__init__(batch_size=torch.Size([batch_size]), device=device)
        self.core = TeachingCore(settings, n_envs=batch_size, seed=seed, **kwargs)
        self.groups = tuple(agents_of(self.core.settings))
        self.group_map = {group: [group] for group in self.groups}
        self.speaks = self.core.settings.student_speaks
        self._student_turn = torch.zeros(batch_size, dtype=torch.bool)  # per environment
        self._make_specs()

    # ----------------------------------------------------------------- specs
    def _make_specs(self) -> None:
        core, b, dev = self.core, self.batch_size, self.device
        shape = (*b, 1)
        sizes = {"teacher": core.teacher_obs_dim, "student": core.stats_dim}
        actions = {"teacher": core.action_nvec, "student": core.report_nvec}
        self.observation_spec = Composite(
            {group: Composite({"observation": Bounded(0.0, 1.0, (*shape, sizes[group]), dtype=torch.float32,
                                                      device=dev),
                               "mask": Categorical(2, shape, dtype=torch.bool, device=dev)},
                              shape=shape, device=dev) for group in self.groups},
            shape=b, device=dev)
        self.action_spec = Composite(
            {group: Composite({"action": MultiCategorical(list(actions[group]), (*shape, len(actions[group])),
                                                          dtype=torch.int64, device=dev)},
                              shape=shape, device=dev) for group in self.groups},
            shape=b, device=dev)
        self.reward_spec = Composite(
            {group: Composite({"reward": Unbounded((*shape, 1), device=dev)}, shape=shape, device=dev)
             for group in self.groups}, shape=b, device=dev)
        self.done_spec = Composite(
            {key: Categorical(2, (*b, 1), dtype=torch.bool, device=dev) for key in ("done", "terminated", "truncated")},
            shape=b, device=dev)

    @property
    def action_keys_by_group(self) -> dict[str, tuple[str, str]]:
        return {group: (group, "action") for group in self.groups}

    # ----------------------------------------------------------------- TorchRL API
    def _set_seed(self, seed: int | None) -> None:
        if seed is not None:
            self.core.generator.manual_seed(int(seed))

    def _reset(self, tensordict: TensorDictBase | None = None, **kwargs: Any) -> TensorDictBase:
        reset = None if tensordict is None else tensordict.get("_reset", None)
        envs = None if reset is None or not self.core.is_reset else reset.reshape(-1).cpu()
        self.core.reset(envs=envs)
        fresh = torch.ones_like(self._student_turn) if envs is None else envs
        self._student_turn[fresh] = self.speaks  # a speaking student reports first
        zeros = torch.zeros((*self.batch_size, 1), dtype=torch.bool)
        return self._output({"done": zeros, "terminated": zeros, "truncated": zeros})

    def _step(self, tensordict: TensorDictBase) -> TensorDictBase:
        core, n = self.core, self.batch_size[0]
        reporting = self._student_turn & ~core.done
        directing = ~self._student_turn & ~core.done
        if bool(reporting.any()):
            tokens = tensordict.get(("student", "action")).cpu().reshape(n, -1)
            core.report(torch.where(reporting[:, None], tokens, core.message))
        reward = torch.zeros(n)
        terminated, truncated = torch.zeros(n, dtype=torch.bool), torch.zeros(n, dtype=torch.bool)
        if bool(directing.any()):
            directives = tensordict.get(("teacher", "action")).cpu().reshape(n, -1)
            out = core.step(directives, envs=None if bool(directing.all()) else directing)
            reward, terminated, truncated = out["reward"], out["terminated"], out["truncated"]
        if self.speaks:
            self._student_turn = torch.where(reporting | directing, ~self._student_turn, self._student_turn)
        done = (terminated | truncated)[:, None]
        out = self._output({"done": done, "terminated": terminated[:, None], "truncated": truncated[:, None]})
        for group in self.groups:
            out.set((group, "reward"), reward.reshape(n, 1, 1).to(self.device))
        return out

    def _output(self, dones: dict[str, torch.Tensor]) -> TensorDictBase:
        core, b, dev = self.core, self.batch_size[0], self.device
        out = _tensordict({key: value.to(dev) for key, value in dones.items()}, [b], dev)
        observations = {"teacher": core.teacher_observation()}
        if self.speaks:
            observations["student"] = core.student_observation()
        for group in self.groups:
            turn = self._student_turn if group == "student" else ~self._student_turn
            out[group] = _tensordict({"observation": observations[group][:, None].to(dev),
                                      "mask": turn[:, None].to(dev)}, [b, 1], dev)
        return out


def make_teaching_env(batch_size: int = 64, seed: int | None = None, device: Any = "cpu",
                      **settings: Any) -> TeachingTorchRLEnv:
    """The TorchRL teaching env (``teaching_v0``'s options as keywords)."""
    return TeachingTorchRLEnv(TeachingSettings(**settings), batch_size=batch_size, seed=seed, device=device)
