"""Receivers: read a message, then score the candidates or reconstruct the target.

A :class:`MessageEncoder` runs a reader (:mod:`commchannels.agents.cells`: ``layers`` of GRU or
LSTM, or a Transformer encoder) over symbol embeddings and keeps the state after every
position, so a receiver answers after each symbol: the differentiable path weighs those answers
by the probability that the message stopped there (``stopping_weights``), the discrete path
reads the answer at the message's length (``output_at``). Integer tokens index the embedding
matrix; relaxed one-hots (and continuous vectors) multiply it, so gradients flow
back into the sender. An :class:`AdditiveReader` (the ``receiver_additive`` option) replaces
the cell by a sum of one learned vector per position and symbol.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from commchannels.agents.bodies import make_body
from commchannels.agents.cells import make_reader
from commchannels.config import check_bool, check_choice

MODES = ("discrimination", "reconstruction")


class AdditiveReader(nn.Module):
    """``(B, L, input_size)`` symbol embeddings -> ``(B, L, hidden)``: the state after position
    ``t`` is ``sum_{s <= t} W_s x_s``, one learned projection per position, summed.

    Each position is read on its own and the readings add up, so the symbol at a position must
    mean the same thing whatever the other positions say: a listener that can only understand a
    language whose positions carry separate meanings (a bag of (position, symbol) votes).

    Args:
        input_size: symbol embedding size.
        hidden: state size.
        max_len: positions (one projection each).
    """

    def __init__(self, input_size: int, hidden: int, max_len: int) -> None:
        super().__init__()
        if input_size < 1 or hidden < 1 or max_len < 1:
            raise ValueError(f"AdditiveReader needs input_size, hidden and max_len >= 1, got "
                             f"input_size={input_size}, hidden={hidden}, max_len={max_len}")
        bound = input_size ** -0.5  # nn.Linear's scale: each position's reading starts at unit size
        self.weight = nn.Parameter(torch.empty(max_len, input_size, hidden).uniform_(-bound, bound))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if inputs.shape[1] > self.weight.shape[0]:
            raise ValueError(f"AdditiveReader reads at most {self.weight.shape[0]} positions, got {inputs.shape[1]}")
        return torch.einsum("ble,leh->blh", inputs, self.weight[: inputs.shape[1]]).cumsum(dim=1)


class MessageEncoder(nn.Module):
    """``(B, L)`` tokens or ``(B, L, V)`` symbols -> ``(B, L, hidden)`` states after each position.

    Args:
        vocab_size: V.
        hidden: state size.
        embed: embedding size.
        cell: ``"gru"``, ``"lstm"`` or ``"transformer"``.
        layers: layers of the reader.
        heads: attention heads (Transformer; divides ``hidden``).
        max_len: longest message (needed by the Transformer's positions and the additive reader).
        additive: an :class:`AdditiveReader` instead of ``cell``.
    """

    def __init__(self, vocab_size: int, hidden: int, embed: int = 32, cell: str = "gru", *, layers: int = 1,
                 heads: int = 4, max_len: int | None = None, additive: bool = False) -> None:
        super().__init__()
        # N(0, 1), as nn.Embedding: at 1/sqrt(embed) scale the symbols barely moved the GRU's state at
        # first, so REINFORCE saw almost no difference between messages (3x more games to 90%)
        self.embedding = nn.Parameter(torch.randn(vocab_size, embed))
        if check_bool("additive", additive):
            if max_len is None:
                raise ValueError("additive=True needs max_len (the longest message, one projection per position)")
            self.reader = AdditiveReader(embed, hidden, max_len)
        else:
            self.reader = make_reader(cell, embed, hidden, max_len, layers, heads)

    def forward(self, message: torch.Tensor) -> torch.Tensor:
        floating = message.is_floating_point()
        inputs = message @ self.embedding if floating else F.embedding(message, self.embedding)
        return self.reader(inputs)


class Receiver(nn.Module):
    """Message (and candidates) -> ``(B, L, output_size)`` logits after each message position.

    In discrimination the logits are dot products between the message state and each encoded
    candidate (``output_size = n_candidates``); in reconstruction a linear head gives logits
    over every attribute's values (``output_size = sum(attribute_sizes)``), matching
    ``game.receiver_loss`` / ``game.guess_from_output``.

    Args:
        object_shape: shape of one object (picks the candidate body).
        vocab_size: V.
        hidden: size of message states and candidate encodings.
        mode: ``"discrimination"`` or ``"reconstruction"``.
        attribute_sizes: values per attribute (reconstruction).
        cell: ``"gru"``, ``"lstm"`` or ``"transformer"``.
        embed: symbol embedding size.
        layers: layers of the message reader.
        heads: attention heads (Transformer; divides ``hidden``).
        max_len: longest message (needed by the Transformer's positions and the additive reader).
        additive: read the message with an :class:`AdditiveReader` instead of ``cell``.
    """

    def __init__(
        self,
        object_shape: Sequence[int],
        vocab_size: int,
        hidden: int,
        mode: str = "discrimination",
        attribute_sizes: Sequence[int] = (),
        cell: str = "gru",
        embed: int = 32,
        *,
        layers: int = 1,
        heads: int = 4,
        max_len: int | None = None,
        additive: bool = False,
    ) -> None:
        super().__init__()
        check_choice("mode", mode, MODES)
        self.mode = mode
        self.encoder = MessageEncoder(vocab_size, hidden, embed, cell, layers=layers, heads=heads, max_len=max_len,
                                      additive=additive)
        if mode == "discrimination":
            self.body = make_body(object_shape, hidden)
        else:
            if not attribute_sizes:
                raise ValueError("attribute_sizes=() is invalid in reconstruction; expected the "
                                 "number of values of each attribute")
            self.head = nn.Linear(hidden, int(sum(attribute_sizes)))

    def forward(self, message: torch.Tensor, candidates: torch.Tensor | None = None) -> torch.Tensor:
        states = self.encoder(message)
        if self.mode == "reconstruction":
            return self.head(states)
        if candidates is None:
            raise ValueError("a discrimination receiver needs the candidates")
        return torch.einsum("blh,bch->blc", states, self.body(candidates))

    def score_shared(self, message: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """Discrimination logits of every message against one shared set of N candidates
        ``(N, *object_shape)``: ``(B, L, N)`` (e.g. every candidate of a batch, for training
        with more distractors)."""
        if self.mode != "discrimination":
            raise ValueError("score_shared needs a discrimination receiver")
        return torch.einsum("blh,nh->bln", self.encoder(message), self.body(candidates))


def output_at(outputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The receiver's ``(B, O)`` answer after reading ``lengths`` symbols of ``(B, L, O)`` outputs."""
    index = (lengths - 1).clamp(min=0)[:, None, None].expand(-1, 1, outputs.shape[-1])
    return outputs.gather(1, index).squeeze(1)


def sample_guess(
    logits: torch.Tensor, attribute_sizes: Sequence[int] | None = None, greedy: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A receiver's action from ``(B, O)`` logits, for REINFORCE.

    Args:
        logits: over candidates, or over every attribute's values concatenated.
        attribute_sizes: ``None`` in discrimination; values per attribute in reconstruction.
        greedy: argmax instead of sampling.

    Returns:
        ``(guess, log_prob, entropy)``: guess ``(B,)`` or ``(B, n_attributes)``; log-prob and
        entropy ``(B,)`` (summed over attributes).
    """
    parts = [logits] if attribute_sizes is None else logits.split(list(attribute_sizes), dim=-1)
    guesses, log_probs, entropies = [], [], []
    for part in parts:
        log_p = part.log_softmax(dim=-1)
        guess = part.argmax(dim=-1) if greedy else torch.multinomial(log_p.detach().exp(), 1).squeeze(1)
        guesses.append(guess)
        log_probs.append(log_p.gather(1, guess[:, None]).squeeze(1))
        entropies.append(-(log_p.exp() * log_p).sum(dim=-1))
    guess = guesses[0] if attribute_sizes is None else torch.stack(guesses, dim=-1)
    return guess, torch.stack(log_probs).sum(0), torch.stack(entropies).sum(0)
