"""Batched students: B independent MLP classifiers stored as stacked tensors and trained by
plain SGD in one computation (batched matmuls with a hand-written backward pass).

Why not ``torch.func`` (``stack_module_state`` + ``functional_call`` + ``vmap(grad(...))``)?
Both give the same per-student gradients; for these small students the cost is dominated by
per-operation overhead, and the explicit ``bmm`` backward of a ReLU MLP needs fewer operations
and no autograd graph. ``benchmarks/teaching.py`` measures both.

The architecture matches :class:`commchannels.agents.classifiers.MLPClassifier` (Linear, ReLU,
..., Linear) and so does the initialisation (``nn.Linear``'s uniform bound ``1/sqrt(fan_in)``),
but every draw comes from the caller's ``torch.Generator``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


class BatchedMLP:
    """B MLP students ``n_features -> hidden... -> n_classes`` with stacked parameters.

    Args:
        n_features: input size.
        n_classes: number of output logits.
        hidden: hidden layer sizes (``()`` gives linear students).
        batch_size: number of students B.
    """

    def __init__(self, n_features: int, n_classes: int, hidden: Sequence[int], batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} is invalid; expected an integer >= 1")
        if any(int(h) < 1 for h in hidden):
            raise ValueError(f"hidden={tuple(hidden)} is invalid; expected layer sizes >= 1")
        self.sizes = [int(n_features), *(int(h) for h in hidden), int(n_classes)]
        self.batch_size = int(batch_size)
        self.weights = [torch.zeros(batch_size, a, b) for a, b in zip(self.sizes[:-1], self.sizes[1:])]
        self.biases = [torch.zeros(batch_size, b) for b in self.sizes[1:]]

    @property
    def parameters(self) -> list[torch.Tensor]:
        """All stacked parameter tensors (leading dimension B)."""
        return [*self.weights, *self.biases]

    def init_(self, generator: torch.Generator, mask: torch.Tensor | None = None) -> None:
        """Re-draw the students selected by ``mask`` (all when ``None``) from ``generator``."""
        for w, b in zip(self.weights, self.biases):
            bound = 1.0 / math.sqrt(w.shape[1])
            new_w = (torch.rand(w.shape, generator=generator) * 2 - 1) * bound
            new_b = (torch.rand(b.shape, generator=generator) * 2 - 1) * bound
            if mask is None:
                w.copy_(new_w)
                b.copy_(new_b)
            else:
                w[mask] = new_w[mask]
                b[mask] = new_b[mask]

    def zero_(self, mask: torch.Tensor) -> None:
        """Set the selected students' parameters to 0 (used to quarantine diverged students)."""
        for p in self.parameters:
            p[mask] = 0.0

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits of every student.

        Args:
            x: ``(N, F)`` inputs shared by all students, or ``(B, N, F)`` one batch per student.

        Returns:
            ``(B, N, n_classes)`` logits and the input of every layer (for the backward pass).
        """
        inputs = []
        h = x
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            inputs.append(h)
            h = torch.matmul(h, w) + b[:, None, :]
            if i < last:
                h = h.clamp_min(0.0)
        return h, inputs

    def sgd_step(self, x: torch.Tensor, targets: torch.Tensor, lr: torch.Tensor) -> torch.Tensor:
        """One SGD update of every student on its own batch with soft-label cross-entropy.

        Args:
            x: ``(B, n, F)`` one batch per student.
            targets: ``(B, n, n_classes)`` target distributions (one-hot for true labels).
            lr: ``(B,)`` learning rate of each student (0 leaves a student unchanged).

        Returns:
            ``(B,)`` training loss of each student before the update.
        """
        logits, inputs = self.forward(x)
        # logits - logsumexp: same values as F.log_softmax, several times faster on a last dim of ~10
        log_p = logits - logits.logsumexp(-1, keepdim=True)
        loss = -(targets * log_p).sum(-1).mean(-1)
        # d(mean cross-entropy)/d(logits) = (softmax - targets) / n
        grad = (log_p.exp() - targets) / x.shape[1]
        for i in range(len(self.weights) - 1, -1, -1):
            a = inputs[i]
            if a.dim() == 2:
                a = a.expand(self.batch_size, *a.shape)
            grad_w = a.transpose(1, 2) @ grad
            grad_b = grad.sum(1)
            if i > 0:
                # ReLU's derivative: inputs[i] is the ReLU output of layer i - 1
                grad = (grad @ self.weights[i].transpose(1, 2)) * (inputs[i] > 0)
            self.weights[i] -= lr[:, None, None] * grad_w
            self.biases[i] -= lr[:, None] * grad_b
        return loss

    def finite(self) -> torch.Tensor:
        """``(B,)`` bool: which students have only finite parameters."""
        ok = torch.ones(self.batch_size, dtype=torch.bool)
        for p in self.parameters:
            ok &= torch.isfinite(p.flatten(1)).all(1)
        return ok

    def state(self, index: int) -> dict[str, torch.Tensor]:
        """Student ``index`` as a state dict loadable into ``MLPClassifier`` of the same sizes."""
        state = {}
        for layer, (w, b) in enumerate(zip(self.weights, self.biases)):
            state[f"net.{2 * layer}.weight"] = w[index].T.clone()
            state[f"net.{2 * layer}.bias"] = b[index].clone()
        return state
