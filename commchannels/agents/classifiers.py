"""Small classifiers shared by the supervised settings (teaching students, exchange workers)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class MLPClassifier(nn.Module):
    """A multilayer perceptron ``n_features -> hidden... -> n_classes`` (ReLU between layers).

    Args:
        n_features: input size (inputs are flattened).
        n_classes: number of output logits.
        hidden: sizes of the hidden layers; ``()`` gives a linear classifier.
    """

    def __init__(self, n_features: int, n_classes: int, hidden: Sequence[int] = (64,)) -> None:
        super().__init__()
        if n_features < 1 or n_classes < 2:
            raise ValueError(f"MLPClassifier needs n_features >= 1 and n_classes >= 2, "
                             f"got n_features={n_features}, n_classes={n_classes}")
        sizes = [n_features, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(sizes[-1], n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))
