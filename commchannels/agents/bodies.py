"""Bodies: object features -> a hidden vector (the part of an agent that perceives).

Vector objects (attribute-value one-hots) go through an MLP; image objects ``(C, H, W)``
(the 8x8 digits) through a small CNN. ``make_body`` picks one from the game's
``object_shape``; ``SenderBody`` encodes the S objects a sender sees (the target first, then
the distractors when ``sender_sees_candidates``) into one hidden vector.
``AttributeAttentionBody`` instead gives one vector per message position, each read from a
learned mixture of the object's attributes (the ``sender_attention`` option).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class MLPBody(nn.Module):
    """``(..., n_features) -> (..., hidden)``: one ReLU layer and a linear projection.

    Args:
        n_features: input size.
        hidden: output size.
    """

    def __init__(self, n_features: int, hidden: int) -> None:
        super().__init__()
        if n_features < 1 or hidden < 1:
            raise ValueError(f"MLPBody needs n_features >= 1 and hidden >= 1, got "
                             f"n_features={n_features}, hidden={hidden}")
        self.net = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, hidden))
        self.out_features = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CNNBody(nn.Module):
    """``(..., C, H, W) -> (..., hidden)``: two 3x3 convolutions (the second strided) and a
    linear projection; small enough for 8x8 digits on a CPU.

    Args:
        in_shape: ``(C, H, W)`` of one object.
        hidden: output size.
        channels: feature maps of the two convolutions.
    """

    def __init__(self, in_shape: Sequence[int], hidden: int, channels: tuple[int, int] = (16, 32)) -> None:
        super().__init__()
        if len(in_shape) != 3 or min(in_shape) < 1:
            raise ValueError(f"CNNBody needs in_shape=(C, H, W) with positive sizes, got {tuple(in_shape)}")
        c, h, w = (int(s) for s in in_shape)
        self.in_shape = (c, h, w)
        self.conv = nn.Sequential(
            nn.Conv2d(c, channels[0], 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels[0], channels[1], 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
        )
        flat = channels[1] * ((h + 1) // 2) * ((w + 1) // 2)
        self.proj = nn.Linear(flat, hidden)
        self.out_features = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-3]
        y = self.proj(self.conv(x.reshape(-1, *self.in_shape)))
        return y.reshape(*lead, -1)


def make_body(object_shape: Sequence[int], hidden: int) -> nn.Module:
    """An MLP for vector objects ``(F,)``, a CNN for images ``(C, H, W)``."""
    shape = tuple(int(s) for s in object_shape)
    if len(shape) == 1:
        return MLPBody(shape[0], hidden)
    if len(shape) == 3:
        return CNNBody(shape, hidden)
    raise ValueError(f"object_shape={shape} is not supported; expected (features,) or (C, H, W)")


class SenderBody(nn.Module):
    """``(B, S, *object_shape) -> (B, hidden)``: each seen object through a shared body, the
    S encodings concatenated in order (target first, so the sender knows which to describe)
    and projected.

    Args:
        object_shape: shape of one object.
        n_views: S, objects the sender sees (1, or ``n_candidates``).
        hidden: output size.
    """

    def __init__(self, object_shape: Sequence[int], n_views: int, hidden: int) -> None:
        super().__init__()
        if n_views < 1:
            raise ValueError(f"n_views={n_views} is invalid; expected an integer >= 1")
        self.n_views = int(n_views)
        self.body = make_body(object_shape, hidden)
        self.proj = nn.Sequential(nn.ReLU(), nn.Linear(n_views * hidden, hidden))

    def forward(self, objects: torch.Tensor) -> torch.Tensor:
        if objects.shape[1] != self.n_views:
            raise ValueError(f"SenderBody expected {self.n_views} objects per game, got {objects.shape[1]}")
        encoded = self.body(objects)  # (B, S, hidden)
        return self.proj(encoded.flatten(1))


class AttributeAttentionBody(nn.Module):
    """``(B, 1, n_features)`` attribute-value one-hots -> ``(B, positions, hidden)``: one vector
    per message position, each describing a learned mixture of the object's attributes.

    Every attribute's one-hot is embedded (plus an embedding of which attribute it is); position
    ``t`` reads ``sum_a softmax(w_t)_a * e_a`` with weights ``w_t`` learned per position and not
    depending on the values, through a ReLU layer. A position that settles on one attribute names
    that attribute alone, so the architecture makes a positional (compositional) language the easy
    one to learn; which position names which attribute, and with which symbols, is learned.

    Args:
        attribute_sizes: values of each attribute; the object is their one-hots concatenated.
        positions: message positions (one output vector each).
        hidden: output size.
    """

    def __init__(self, attribute_sizes: Sequence[int], positions: int, hidden: int) -> None:
        super().__init__()
        sizes = [int(n) for n in attribute_sizes]
        if not sizes or min(sizes) < 1 or positions < 1 or hidden < 1:
            raise ValueError(f"AttributeAttentionBody needs attribute_sizes (values per attribute, each >= 1), "
                             f"positions >= 1 and hidden >= 1, got attribute_sizes={tuple(attribute_sizes)}, "
                             f"positions={positions}, hidden={hidden}")
        self.sizes = sizes
        self.values = nn.ModuleList(nn.Linear(n, hidden) for n in sizes)
        self.attribute = nn.Parameter(torch.randn(len(sizes), hidden))
        self.mixing = nn.Parameter(torch.randn(positions, len(sizes)))
        self.out = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU())
        self.out_features = hidden

    def attention(self) -> torch.Tensor:
        """``(positions, n_attributes)``: how much each position reads each attribute (rows sum to 1)."""
        return self.mixing.softmax(dim=-1)

    def forward(self, objects: torch.Tensor) -> torch.Tensor:
        if objects.dim() != 3 or objects.shape[1] != 1 or objects.shape[2] != sum(self.sizes):
            raise ValueError(f"AttributeAttentionBody expected objects of shape (B, 1, {sum(self.sizes)}) (the "
                             f"target's one-hots), got {tuple(objects.shape)}")
        parts = objects[:, 0].split(self.sizes, dim=-1)
        encoded = torch.stack([embed(part) for embed, part in zip(self.values, parts)], dim=1) + self.attribute
        return self.out(torch.einsum("ta,bah->bth", self.attention(), encoded))
