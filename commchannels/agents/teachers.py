"""Teacher policies: observation vector -> a MultiDiscrete action (a training directive, or a
student's report), one categorical distribution per action component.

Two bodies share the heads and the interface: :class:`MultiDiscretePolicy` (an MLP, no memory)
and :class:`RecurrentPolicy` (a GRU over the observations of one episode and its own previous
actions, so the teacher can read a student's history: how its loss responds to the learning
rate just given tells what kind of student it is). Every call takes and returns an explicit
state ``(B, state_size)``; the MLP's is empty. A new episode starts from
:meth:`MultiDiscretePolicy.initial_state`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn
from torch.distributions import Categorical

MEMORIES = ("gru", "none")


class Step(NamedTuple):
    """One sampled step of a batch of ``B`` environments."""

    actions: torch.Tensor  # (B, n_components) long
    log_prob: torch.Tensor  # (B,) of the actions
    entropy: torch.Tensor  # (B,) of the distributions
    value: torch.Tensor  # (B,) the value head's output (a learned baseline, if the loop trains one)
    state: torch.Tensor  # (B, state_size) the next state


class RunningNorm(nn.Module):
    """Standardises inputs by running statistics (mean and variance of every input seen by
    :meth:`update`, Chan et al.'s parallel update), clipped to ``[-clip, clip]``. The raw
    statistics of the teaching environment mix scales (a loss feature that varies by 0.05 beside
    probabilities that vary by 1), and standardising lets the small but telling ones count."""

    def __init__(self, size: int, clip: float = 5.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.clip, self.eps = clip, eps
        self.register_buffer("mean", torch.zeros(size))
        self.register_buffer("var", torch.ones(size))
        self.register_buffer("count", torch.zeros(()))

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Add a batch ``(B, size)`` to the statistics."""
        n = len(x)
        mean, var = x.mean(0), x.var(0, unbiased=False)
        total = self.count + n
        delta = mean - self.mean
        self.var.copy_((self.var * self.count + var * n + delta**2 * self.count * n / total) / total)
        self.mean.add_(delta * n / total)
        self.count.copy_(total)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.mean) / (self.var + self.eps).sqrt()).clamp(-self.clip, self.clip)


class MultiDiscretePolicy(nn.Module):
    """An MLP with one softmax head per component of ``MultiDiscrete(nvec)``.

    Used for the teacher (directives: data bucket, learning-rate level, target level) and for a
    speaking student (report tokens). A linear value head beside the action heads reads the same
    features; the losses, and whether the value serves as a baseline, live in the training loop.

    Args:
        obs_dim: observation size.
        nvec: number of choices of each action component.
        hidden: hidden layer sizes (tanh).
    """

    state_size = 0

    def __init__(self, obs_dim: int, nvec: Sequence[int], hidden: Sequence[int] = (64,)) -> None:
        super().__init__()
        if obs_dim < 1 or not nvec or any(int(n) < 1 for n in nvec):
            raise ValueError(f"{type(self).__name__} needs obs_dim >= 1 and nvec of positive sizes, "
                             f"got obs_dim={obs_dim}, nvec={list(nvec)}")
        self.obs_dim = int(obs_dim)
        self.nvec = [int(n) for n in nvec]
        layers: list[nn.Module] = []
        size = obs_dim
        for h in hidden:
            layers += [nn.Linear(size, h), nn.Tanh()]
            size = h
        self.norm = RunningNorm(obs_dim)
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(size, sum(self.nvec))
        self.value_head = nn.Linear(size, 1)
        # a near-uniform initial policy explores every directive (CleanRL's small actor init)
        nn.init.normal_(self.head.weight, std=0.01)
        nn.init.zeros_(self.head.bias)

    def initial_state(self, batch: int) -> torch.Tensor:
        """The state at the start of an episode, ``(batch, state_size)``."""
        return torch.zeros(batch, self.state_size)

    def encode(self, obs: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features for the heads and the next state (memoryless: the state passes through)."""
        return self.body(self.norm(obs)), state

    def remember(self, state: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """The state once ``actions`` ``(B, n_components)`` are taken (memoryless: unchanged)."""
        return state

    def forward(self, obs: torch.Tensor, state: torch.Tensor | None = None
                ) -> tuple[list[Categorical], torch.Tensor, torch.Tensor]:
        """One categorical distribution per action component for a batch ``(B, obs_dim)``, the
        value ``(B,)`` and the next state (``state=None``: the start of an episode)."""
        if obs.dim() != 2 or obs.shape[1] != self.obs_dim:
            raise ValueError(f"observations of shape {tuple(obs.shape)} are invalid; expected (B, {self.obs_dim})")
        if state is None:
            state = self.initial_state(len(obs))
        features, state = self.encode(obs, state)
        logits = self.head(features)
        dists = [Categorical(logits=part) for part in logits.split(self.nvec, dim=-1)]
        return dists, self.value_head(features).squeeze(-1), state

    def sample(self, obs: torch.Tensor, state: torch.Tensor | None = None) -> Step:
        """Sampled actions with their log-probability, entropy and value, and the next state; in
        training mode, ``obs`` first joins the input statistics."""
        if self.training:
            self.norm.update(obs)
        dists, value, state = self(obs, state)
        actions = torch.stack([d.sample() for d in dists], dim=-1)
        log_prob = sum(d.log_prob(actions[:, i]) for i, d in enumerate(dists))
        entropy = sum(d.entropy() for d in dists)
        return Step(actions, log_prob, entropy, value, self.remember(state, actions))

    @torch.no_grad()
    def act(self, obs: torch.Tensor, state: torch.Tensor | None = None, greedy: bool = True
            ) -> tuple[torch.Tensor, torch.Tensor]:
        """Actions for evaluation, the most likely one per component (or sampled), and the next state."""
        dists, _, state = self(obs, state)
        actions = torch.stack([d.probs.argmax(-1) if greedy else d.sample() for d in dists], dim=-1)
        return actions, self.remember(state, actions)


class RecurrentPolicy(MultiDiscretePolicy):
    """:class:`MultiDiscretePolicy` with memory: the MLP body's features and the one-hot previous
    action feed a GRU cell whose hidden state (one per environment) carries the episode so far;
    the heads read the GRU's output. The previous action matters while training: a sampled
    directive is not predictable from the observations, yet the student's response means
    little without it (the RL^2 input of Duan et al. 2016). Trained by backpropagation through
    the episode. The state is the GRU's hidden state followed by the previous action's one-hot
    encoding (zeros at an episode's start).

    Args:
        obs_dim: observation size.
        nvec: number of choices of each action component.
        hidden: hidden layer sizes of the body; the GRU's size is the last one.
    """

    def __init__(self, obs_dim: int, nvec: Sequence[int], hidden: Sequence[int] = (64,)) -> None:
        if not hidden:
            raise ValueError(f"RecurrentPolicy needs a hidden layer (the GRU's size), got hidden={list(hidden)}")
        super().__init__(obs_dim, nvec, hidden)
        self.memory_size = int(hidden[-1])
        self.state_size = self.memory_size + sum(self.nvec)
        self.cell = nn.GRUCell(self.memory_size + sum(self.nvec), self.memory_size)

    def encode(self, obs: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if state.shape != (len(obs), self.state_size):
            raise ValueError(f"state of shape {tuple(state.shape)} is invalid; expected ({len(obs)}, "
                             f"{self.state_size}): one per environment, from initial_state() at an episode's start")
        memory, previous = state.split([self.memory_size, self.state_size - self.memory_size], dim=1)
        memory = self.cell(torch.cat([self.body(self.norm(obs)), previous], dim=1), memory)
        return memory, torch.cat([memory, previous], dim=1)

    def remember(self, state: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        onehots = [nn.functional.one_hot(actions[:, i], n).to(state.dtype) for i, n in enumerate(self.nvec)]
        return torch.cat([state[:, : self.memory_size], *onehots], dim=1)


def make_policy(memory: str, obs_dim: int, nvec: Sequence[int], hidden: Sequence[int] = (64,)
                ) -> MultiDiscretePolicy:
    """The policy with ``memory`` (``"gru"``: :class:`RecurrentPolicy`, ``"none"``: the MLP)."""
    if memory not in MEMORIES:
        raise ValueError(f"memory={memory!r} is not allowed; expected one of {list(MEMORIES)}")
    return (RecurrentPolicy if memory == "gru" else MultiDiscretePolicy)(obs_dim, nvec, hidden)


ReportPolicy = MultiDiscretePolicy
