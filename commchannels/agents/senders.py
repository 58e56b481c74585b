"""Referential agents assembled from the parts: a sender (body + channel) and a receiver."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from commchannels.agents.bodies import AttributeAttentionBody, SenderBody
from commchannels.agents.cells import check_cell_options
from commchannels.agents.channels import Channel, Message, make_channel
from commchannels.agents.receivers import Receiver
from commchannels.config import check_bool


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
    *,
    layers: int = 1,
    heads: int = 4,
    temperature_learnable: bool = False,
    temperature_min: float = 0.5,
    sender_memoryless: bool = False,
    sender_attention: bool = False,
    receiver_additive: bool = False,
) -> tuple[Sender, Receiver]:
    """A sender and a receiver sized for ``game`` (a ``ReferentialGame``).

    Args:
        game: gives ``object_shape``, ``sender_views``, ``vocab_size``, ``max_len``, ``mode``
            and ``attribute_sizes``.
        method: ``"reinforce"``, ``"gumbel"``, ``"st-gumbel"`` or ``"continuous"``.
        cell: ``"gru"``, ``"lstm"`` or ``"transformer"`` (sender head and receiver reader).
        sender_hidden: sender body / cell size.
        receiver_hidden: receiver state size.
        embed: symbol embedding size.
        temperature: initial Gumbel-Softmax temperature.
        layers: layers of the sender head and of the receiver reader.
        heads: attention heads of Transformer cells (divides both hidden sizes).
        temperature_learnable: learn the Gumbel-Softmax temperature (floored at ``temperature_min``).
        temperature_min: the learned temperature's floor.
        sender_memoryless: each symbol from the object and its position only (see
            :class:`~commchannels.agents.channels.Channel`).
        sender_attention: each message position reads a learned mixture of the target's
            attributes (:class:`~commchannels.agents.bodies.AttributeAttentionBody`; needs
            attribute-value objects seen alone, and is memoryless already).
        receiver_additive: the receiver reads the message with an
            :class:`~commchannels.agents.receivers.AdditiveReader` instead of ``cell``.

    Raises:
        ValueError: ``sender_attention`` on a game whose objects are not attribute-value one-hots
            seen alone, or together with ``sender_memoryless``.
    """
    sizes: Sequence[int] = game.attribute_sizes
    if check_bool("sender_attention", sender_attention):
        _check_attention_game(game, sender_memoryless)
        body: nn.Module = AttributeAttentionBody(sizes, game.max_len, sender_hidden)
    else:
        body = SenderBody(game.object_shape, game.sender_views, sender_hidden)
    channel = make_channel(method, sender_hidden, game.vocab_size, game.max_len, cell, embed, temperature,
                           layers=layers, heads=heads, temperature_learnable=temperature_learnable,
                           temperature_min=temperature_min, memoryless=sender_memoryless,
                           per_position=sender_attention)
    receiver = Receiver(game.object_shape, game.vocab_size, receiver_hidden, game.mode, sizes, cell, embed,
                        layers=layers, heads=heads, max_len=game.max_len, additive=receiver_additive)
    return Sender(body, channel), receiver


def _check_attention_game(game, sender_memoryless: bool) -> None:
    """``sender_attention`` reads the target's attributes: the objects must be their one-hots, alone."""
    sizes = tuple(game.attribute_sizes or ())
    if not sizes or tuple(game.object_shape) != (sum(sizes),):
        raise ValueError(f"sender_attention=True needs attribute-value objects (one-hots of each attribute, "
                         f"concatenated); this game's objects have shape {tuple(game.object_shape)} and "
                         f"attribute_sizes={sizes}")
    if game.sender_views != 1:
        raise ValueError(f"sender_attention=True reads the target alone, but the sender sees {game.sender_views} "
                         "objects; expected sender_sees_candidates=False")
    if sender_memoryless:
        raise ValueError("sender_attention=True is memoryless already; expected sender_memoryless=False with it")


AGENT_OPTIONS = ("layers", "heads", "temperature_learnable", "temperature_min", "sender_memoryless",
                 "sender_attention", "receiver_additive")


def agent_options(options: Any) -> dict[str, Any]:
    """The keyword options of :func:`make_agents` read from a trainer config (those named in
    :data:`AGENT_OPTIONS`)."""
    return {name: getattr(options, name) for name in AGENT_OPTIONS}


def check_agent_options(options: Any) -> None:
    """Cross-option checks of a trainer config's agent options, so a bad combination fails when the
    config is built: Transformer heads dividing both hidden sizes, and a learned temperature
    starting above its floor and not also annealed.

    Args:
        options: has ``cell``, ``layers``, ``heads``, ``sender_hidden``, ``receiver_hidden``,
            ``temperature``, ``temperature_min``, ``temperature_learnable`` and optionally
            ``temperature_decay``.

    Raises:
        ValueError: naming the options and what is expected.
    """
    check_cell_options(options.cell, options.sender_hidden, options.layers, options.heads, "sender_hidden")
    check_cell_options(options.cell, options.receiver_hidden, options.layers, options.heads, "receiver_hidden")
    if options.temperature_learnable:
        if not options.temperature > options.temperature_min:
            raise ValueError(f"temperature={options.temperature} is not above temperature_min="
                             f"{options.temperature_min} with temperature_learnable=True; expected the initial "
                             "temperature above the learned temperature's floor")
        if getattr(options, "temperature_decay", 1.0) != 1.0:
            raise ValueError(f"temperature_decay={options.temperature_decay} anneals the temperature, but "
                             "temperature_learnable=True learns it; expected temperature_decay=1 (or no "
                             "temperature_learnable)")
