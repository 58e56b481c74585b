"""Small convolutional classifiers: 1-D for MNIST-1D, 2-D for digits and MNIST.

Inputs arrive flattened ``(B, n_features)`` (as :class:`~commchannels.data.Dataset` stores
them) and are reshaped to the data set's ``input_shape``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from commchannels.agents.classifiers import MLPClassifier


def _out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


class CNN1DClassifier(nn.Module):
    """Three strided 1-D convolutions and a linear head: the ``ConvBase`` of Greydanus (2020,
    "Scaling down deep learning", arXiv 2011.14439), about 0.94 test accuracy on MNIST-1D.

    Args:
        input_shape: ``(channels, length)`` of one input.
        n_classes: number of output logits.
        channels: feature maps of every convolution.
    """

    def __init__(self, input_shape: Sequence[int], n_classes: int, channels: int = 25) -> None:
        super().__init__()
        if len(input_shape) != 2 or channels < 1 or n_classes < 2:
            raise ValueError(f"CNN1DClassifier needs input_shape=(channels, length), channels >= 1 and "
                             f"n_classes >= 2, got input_shape={tuple(input_shape)}, channels={channels}, "
                             f"n_classes={n_classes}")
        self.input_shape = tuple(input_shape)
        c_in, length = self.input_shape
        self.convs = nn.Sequential(nn.Conv1d(c_in, channels, 5, stride=2, padding=1), nn.ReLU(),
                                   nn.Conv1d(channels, channels, 3, stride=2, padding=1), nn.ReLU(),
                                   nn.Conv1d(channels, channels, 3, stride=2, padding=1), nn.ReLU())
        for kernel in (5, 3, 3):
            length = _out(length, kernel, 2, 1)
        if length < 1:
            raise ValueError(f"input_shape={tuple(input_shape)} is too short for three stride-2 convolutions")
        self.head = nn.Linear(channels * length, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.convs(x.reshape(-1, *self.input_shape)).flatten(1))


class CNN2DClassifier(nn.Module):
    """A 3x3 convolution, two strided 3x3 convolutions and a linear head (8x8 digits: 8 -> 4 -> 2).

    Args:
        input_shape: ``(channels, height, width)`` of one input.
        n_classes: number of output logits.
        channels: feature maps of every convolution.
    """

    def __init__(self, input_shape: Sequence[int], n_classes: int, channels: int = 16) -> None:
        super().__init__()
        if len(input_shape) != 3 or channels < 1 or n_classes < 2:
            raise ValueError(f"CNN2DClassifier needs input_shape=(channels, height, width), channels >= 1 and "
                             f"n_classes >= 2, got input_shape={tuple(input_shape)}, channels={channels}, "
                             f"n_classes={n_classes}")
        self.input_shape = tuple(input_shape)
        c_in, h, w = self.input_shape
        self.convs = nn.Sequential(nn.Conv2d(c_in, channels, 3, padding=1), nn.ReLU(),
                                   nn.Conv2d(channels, channels, 3, stride=2, padding=1), nn.ReLU(),
                                   nn.Conv2d(channels, channels, 3, stride=2, padding=1), nn.ReLU())
        for _ in range(2):
            h, w = _out(h, 3, 2, 1), _out(w, 3, 2, 1)
        self.head = nn.Linear(channels * h * w, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.convs(x.reshape(-1, *self.input_shape)).flatten(1))


def build_classifier(model: str, input_shape: Sequence[int], n_classes: int, hidden: Sequence[int] = (64,),
                     channels: int = 25) -> nn.Module:
    """``model='mlp'``: an :class:`MLPClassifier` with ``hidden`` layers; ``'cnn'``: the 1-D or
    2-D CNN that fits ``input_shape`` with ``channels`` feature maps."""
    n_features = 1
    for size in input_shape:
        n_features *= size
    if model == "mlp":
        return MLPClassifier(n_features, n_classes, hidden)
    if model == "cnn":
        cls = CNN1DClassifier if len(input_shape) == 2 else CNN2DClassifier
        return cls(input_shape, n_classes, channels)
    raise ValueError(f"model={model!r} is not allowed; expected one of ['mlp', 'cnn']")


def count_parameters(model: str, input_shape: Sequence[int], n_classes: int, hidden: Sequence[int] = (64,),
                     channels: int = 25) -> int:
    """Parameters of :func:`build_classifier`'s model, counted without allocating it."""
    with torch.device("meta"):
        net = build_classifier(model, input_shape, n_classes, hidden, channels)
    return sum(p.numel() for p in net.parameters())
