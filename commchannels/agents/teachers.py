"""Teacher policies: observation vector -> a MultiDiscrete action (a training directive, or a
student's report), one categorical distribution per action component."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.distributions import Categorical


class MultiDiscretePolicy(nn.Module):
    """An MLP with one softmax head per component of ``MultiDiscrete(nvec)``.

    Used for the teacher (directives: data bucket, learning-rate level, target level) and for a
    speaking student (report tokens). Losses and baselines live in the training loop.

    Args:
        obs_dim: observation size.
        nvec: number of choices of each action component.
        hidden: hidden layer sizes (tanh).
    """

    def __init__(self, obs_dim: int, nvec: Sequence[int], hidden: Sequence[int] = (64,)) -> None:
        super().__init__()
        if obs_dim < 1 or not nvec or any(int(n) < 1 for n in nvec):
            raise ValueError(f"MultiDiscretePolicy needs obs_dim >= 1 and nvec of positive sizes, "
                             f"got obs_dim={obs_dim}, nvec={list(nvec)}")
        self.nvec = [int(n) for n in nvec]
        layers: list[nn.Module] = []
        size = obs_dim
        for h in hidden:
            layers += [nn.Linear(size, h), nn.Tanh()]
            size = h
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(size, sum(self.nvec))
        # a near-uniform initial policy explores every directive (CleanRL's small actor init)
        nn.init.normal_(self.head.weight, std=0.01)
        nn.init.zeros_(self.head.bias)

    def distributions(self, obs: torch.Tensor) -> list[Categorical]:
        """One categorical distribution per action component for a batch ``(B, obs_dim)``."""
        logits = self.head(self.body(obs))
        return [Categorical(logits=part) for part in logits.split(self.nvec, dim=-1)]

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sampled actions ``(B, n_components)``, their log-probability and entropy ``(B,)``."""
        dists = self.distributions(obs)
        actions = torch.stack([d.sample() for d in dists], dim=-1)
        log_prob = sum(d.log_prob(actions[:, i]) for i, d in enumerate(dists))
        entropy = sum(d.entropy() for d in dists)
        return actions, log_prob, entropy

    @torch.no_grad()
    def act(self, obs: torch.Tensor, greedy: bool = True) -> torch.Tensor:
        """Actions for evaluation: the most likely one per component (or sampled)."""
        if not greedy:
            return self.sample(obs)[0]
        return torch.stack([d.probs.argmax(-1) for d in self.distributions(obs)], dim=-1)


TeacherPolicy = MultiDiscretePolicy
ReportPolicy = MultiDiscretePolicy
