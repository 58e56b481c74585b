"""Receivers: read a message, then score the candidates or reconstruct the target.

A :class:`MessageEncoder` runs a reader (:mod:`commchannels.agents.cells`: ``layers`` of GRU or
LSTM, or a Transformer encoder) over symbol embeddings and keeps the state after every
position, so a receiver answers after each symbol: the differentiable path weighs those answers
by the probability that the message stopped there (``stopping_weights``), the discrete path
reads the answer at the message's length (``output_at``). Integer tokens index the embedding
matrix; relaxed one-hots (and continuous vectors) multiply it, so gradients flow
back into the sender.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from commchannels.agents.bodies import make_body
from commchannels.agents.cells import make_reader
from commchannels.config import check_choice

MODES = ("discrimination", "reconstruction")


class MessageEncoder(nn.Module):
    """``(B, L)`` tokens or ``(B, L, V)`` symbols -> ``(B, L, hidden)`` states after each position.

    Args:
        vocab_size: V.
        hidden: state size.
        embed: embedding size.
        cell: ``"gru"``, ``"lstm"`` or ``"transformer"``.
        layers: layers of the reader.
        heads: attention heads (Transformer; divides ``hidden``).
        max_len: longest message (needed by the Transformer's positions).
    """

    def __init__(self, vocab_size: int, hidden: int, embed: int = 32, cell: str = "gru", *, layers: int = 1,
                 heads: int = 4, max_len: int | None = None) -> None:
        super().__init__()
        # N(0, 1), as nn.Embedding: at 1/sqrt(embed) scale the symbols barely moved the GRU's state at
        # first, so REINFORCE saw almost no difference between messages (3x more games to 90%)
        self.embedding = nn.Parameter(torch.randn(vocab_size, embed))
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
        max_len: longest message (needed by the Transformer's positions).
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
    ) -> None:
        super().__init__()
        check_choice("mode", mode, MODES)
        self.mode = mode
        self.encoder = MessageEncoder(vocab_size, hidden, embed, cell, layers=layers, heads=heads, max_len=max_len)
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
