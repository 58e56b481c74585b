"""Referential agents assembled from the parts: a sender (body + channel) and a receiver."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from commchannels.agents.bodies import SenderBody
from commchannels.agents.channels import Channel, Message, make_channel
from commchannels.agents.receivers import Receiver


class Sender(nn.Module):
    """``(B, S, *object_shape)`` seen objects -> :class:`Message`.

    Args:
        body: encodes the seen objects into ``(B, hidden)``.
        channel: turns that vector into a message.
    """

    def __init__(self, body: nn.Module, channel: Channel) -> None:
        super().__init__()
        self.body, self.channel = body, channel

    def forward(self, objects: torch.Tensor, greedy: bool = False) -> Message:
        return self.channel(self.body(objects), greedy=greedy)


def make_agents(
    game,
    method: str,
    cell: str = "gru",
    sender_hidden: int = 128,
    receiver_hidden: int = 128,
    embed: int = 32,
    temperature: float = 1.0,
) -> tuple[Sender, Receiver]:
    """A sender and a receiver sized for ``game`` (a ``ReferentialGame``).

    Args:
        game: gives ``object_shape``, ``sender_views``, ``vocab_size``, ``max_len``, ``mode``
            and ``attribute_sizes``.
        method: ``"reinforce"``, ``"gumbel"``, ``"st-gumbel"`` or ``"continuous"``.
        cell: ``"gru"`` or ``"lstm"`` (sender head and receiver encoder).
        sender_hidden: sender body / cell size.
        receiver_hidden: receiver state size.
        embed: symbol embedding size.
        temperature: initial Gumbel-Softmax temperature.
    """
    body = SenderBody(game.object_shape, game.sender_views, sender_hidden)
    channel = make_channel(method, sender_hidden, game.vocab_size, game.max_len, cell, embed, temperature)
    sizes: Sequence[int] = game.attribute_sizes
    receiver = Receiver(game.object_shape, game.vocab_size, receiver_hidden, game.mode, sizes, cell, embed)
    return Sender(body, channel), receiver
