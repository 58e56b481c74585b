"""Channels: a sender's hidden vector -> a message (EGG's wrappers, without the game logic).

================  ===========================================  ==============================
channel           what crosses                                 how the sender learns
================  ===========================================  ==============================
``reinforce``     sampled tokens (greedy at evaluation)        REINFORCE on ``log_probs``
``gumbel``        relaxed one-hots (Gumbel-Softmax, Jang et    gradients through the
                  al. 2017; Maddison et al. 2017)              relaxation
``st-gumbel``     hard one-hots, soft gradients (straight-     as ``gumbel``
                  through Gumbel-Softmax)
``continuous``    one real vector per position (upper bound)   plain gradients
================  ===========================================  ==============================

``max_len == 1`` is a linear head on the hidden vector; longer messages unroll a cell
(:mod:`commchannels.agents.cells`: ``layers`` of GRU or LSTM, or a causal Transformer) whose
input is the previous symbol's embedding (relaxed symbols multiply the embedding matrix so
gradients reach the sender), as in EGG's ``RnnSenderGS`` / ``RnnSenderReinforce`` /
``TransformerSenderReinforce``. Token 0 is EOS. Losses, baselines and entropy bonuses live in
the training code.

The Gumbel-Softmax temperature is either set from outside between steps (annealing), or
learned (``temperature_learnable``): a scalar parameter of the channel, ``temperature_min +
softplus(w)``, so it never falls below the floor (EGG's ``trainable_temperature``, floored).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from commchannels.agents.cells import CELLS, check_cell_options, make_sender_cell
from commchannels.config import check_bool, check_choice, check_range

METHODS = ("reinforce", "gumbel", "st-gumbel", "continuous")
__all__ = ["CELLS", "METHODS", "Channel", "ContinuousChannel", "GumbelChannel", "Message", "ReinforceChannel",
           "make_channel", "stopping_weights"]


@dataclass
class Message:
    """What a channel emits for B games.

    Attributes:
        tokens: ``(B, L)`` long, the discrete message (argmax of relaxed / continuous symbols).
        symbols: ``(B, L, V)`` float what the receiver reads on the differentiable paths
            (relaxed or hard one-hots, or real vectors); ``None`` for REINFORCE.
        log_probs: ``(B, L)`` log-probability of each sampled token (REINFORCE), else ``None``.
        entropies: ``(B, L)`` entropy of each position's token distribution (None if continuous).
    """

    tokens: torch.Tensor
    symbols: torch.Tensor | None = None
    log_probs: torch.Tensor | None = None
    entropies: torch.Tensor | None = None


class Channel(nn.Module):
    """Base channel: unrolls the message; subclasses choose each position's symbol (:meth:`emit`).

    Args:
        hidden: size of the sender's hidden vector.
        vocab_size: V, symbols per position (0 = EOS).
        max_len: L, positions per message.
        cell: ``"gru"``, ``"lstm"`` or ``"transformer"`` (unused when ``max_len == 1``).
        embed: size of the symbol embedding fed back into the cell.
        layers: layers of the cell.
        heads: attention heads of the Transformer cell (divides ``hidden``).
        memoryless: each position's symbol depends on the sender's vector and the position only,
            not on the symbols before it (Kottur et al. 2017's memoryless speaker): the cell runs
            once per position from the sender's vector, fed a learned position embedding.
        per_position: the sender's body gives one vector per position, ``(B, max_len, hidden)``
            (:class:`~commchannels.agents.bodies.AttributeAttentionBody`), and each position's
            symbol comes from its own vector through the head: memoryless, no cell.
    """

    def __init__(self, hidden: int, vocab_size: int, max_len: int, cell: str = "gru", embed: int = 32,
                 layers: int = 1, heads: int = 4, memoryless: bool = False, per_position: bool = False) -> None:
        super().__init__()
        check_range("vocab_size", vocab_size, 2)
        check_range("max_len", max_len, 1)
        check_cell_options(cell, hidden, layers, heads)
        self.vocab_size, self.max_len, self.cell_type = int(vocab_size), int(max_len), cell
        self.per_position = check_bool("per_position", per_position)
        self.memoryless = check_bool("memoryless", memoryless) or self.per_position
        self.head = nn.Linear(hidden, vocab_size)
        if self.max_len > 1 and not self.per_position:
            if self.memoryless:
                self.positions = nn.Parameter(torch.randn(self.max_len, embed))
            else:
                # N(0, 1), as nn.Embedding: at 1/sqrt(embed) scale the symbols barely moved the GRU's state
                # at first, so REINFORCE saw almost no difference between messages (3x more games to 90%)
                self.embedding = nn.Parameter(torch.randn(vocab_size, embed))
                self.sos = nn.Parameter(torch.zeros(embed))
            self.cell = make_sender_cell(cell, embed, hidden, self.max_len, layers, heads)

    def emit(
        self, logits: torch.Tensor, greedy: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """One position: ``(token (B,), symbol (B, V) or None, log_prob or None, entropy or None)``."""
        raise NotImplementedError

    def forward(self, hidden: torch.Tensor, greedy: bool = False) -> Message:
        """Unroll ``max_len`` positions from the sender's ``(B, hidden)`` vector (``(B, max_len,
        hidden)`` with ``per_position``)."""
        if self.memoryless or self.max_len == 1:
            steps = [self.emit(logits, greedy) for logits in self._memoryless_logits(hidden).unbind(1)]
        else:
            steps = []
            state = self.cell.start(hidden)
            inputs = self.sos.expand(hidden.shape[0], -1)
            for _ in range(self.max_len):
                out, state = self.cell(inputs, state)
                step = self.emit(self.head(out), greedy)
                steps.append(step)
                token, symbol = step[0], step[1]
                inputs = symbol @ self.embedding if symbol is not None else F.embedding(token, self.embedding)
        tokens, symbols, log_probs, entropies = zip(*steps)

        def stack(parts: tuple) -> torch.Tensor | None:
            return None if parts[0] is None else torch.stack(parts, dim=1)

        return Message(torch.stack(tokens, dim=1), stack(symbols), stack(log_probs), stack(entropies))


    def forced_logits(self, hidden: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """``(B, L, V)`` logits at each position when the message so far is ``tokens`` (teacher forcing):
        how likely this sender is to send a given message, which imitation learning maximises."""
        if self.memoryless or self.max_len == 1:
            return self._memoryless_logits(hidden)
        logits, state = [], self.cell.start(hidden)
        inputs = self.sos.expand(hidden.shape[0], -1)
        for t in range(self.max_len):
            out, state = self.cell(inputs, state)
            logits.append(self.head(out))
            inputs = F.embedding(tokens[:, t], self.embedding)
        return torch.stack(logits, dim=1)

    def _memoryless_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """``(B, L, V)``: position ``t``'s logits from the sender's vector and position ``t`` alone
        (the head alone for one position, or on each position's own vector with ``per_position``)."""
        if self.per_position:
            if hidden.dim() != 3 or hidden.shape[1] != self.max_len:
                raise ValueError(f"a per-position channel expected (B, {self.max_len}, hidden) vectors, one per "
                                 f"position, got {tuple(hidden.shape)}")
            return self.head(hidden)
        if self.max_len == 1:
            return self.head(hidden)[:, None]
        start = self.cell.start(hidden)
        return torch.stack([self.head(self.cell(self.positions[t].expand(hidden.shape[0], -1), start)[0])
                            for t in range(self.max_len)], dim=1)


def _entropy(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    log_p = logits.log_softmax(dim=-1)
    return log_p, -(log_p.exp() * log_p).sum(dim=-1)


class ReinforceChannel(Channel):
    """Samples tokens (argmax when greedy) and reports their log-probabilities and entropies."""

    def emit(self, logits, greedy):
        log_p, entropy = _entropy(logits)
        sampled = logits.argmax(dim=-1) if greedy else torch.multinomial(log_p.detach().exp(), 1)
        token = sampled.reshape(-1)
        return token, None, log_p.gather(1, token[:, None]).squeeze(1), entropy


class GumbelChannel(Channel):
    """Gumbel-Softmax samples (``straight_through``: hard one-hots forward, soft gradients back);
    greedy gives exact one-hots.

    Args:
        temperature: the (initial) temperature; may be set between steps (annealing) unless learned.
        straight_through: hard one-hots forward, soft gradients back.
        temperature_learnable: learn the temperature as ``temperature_min + softplus(w)``,
            starting at ``temperature`` (which must then exceed ``temperature_min``).
        temperature_min: the learned temperature's floor.
    """

    def __init__(self, *args, temperature: float = 1.0, straight_through: bool = False,
                 temperature_learnable: bool = False, temperature_min: float = 0.5, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.straight_through = bool(straight_through)
        self.learnable = check_bool("temperature_learnable", temperature_learnable)
        check_range("temperature", temperature, gt=0.0)
        if self.learnable:
            check_range("temperature_min", temperature_min, gt=0.0)
            if not temperature > temperature_min:
                raise ValueError(f"temperature={temperature} is not above temperature_min={temperature_min}; "
                                 "a learned temperature starts at temperature and stays above temperature_min")
            self.temperature_min = float(temperature_min)
            excess = torch.tensor(float(temperature) - self.temperature_min, dtype=torch.float64)
            # inverse softplus, stable for small and large excess: w = x + log(1 - exp(-x))
            self.temperature_weight = nn.Parameter((excess + torch.log(-torch.expm1(-excess))).float())
        else:
            self._temperature = float(temperature)

    @property
    def temperature(self) -> float | torch.Tensor:
        """The temperature: a float, or a 0-d tensor with gradients when learned."""
        if self.learnable:
            return self.temperature_min + F.softplus(self.temperature_weight)
        return self._temperature

    @temperature.setter
    def temperature(self, value: float) -> None:
        if self.learnable:
            raise ValueError("the temperature is learned (temperature_learnable=True); it cannot be set")
        check_range("temperature", value, gt=0.0)
        self._temperature = float(value)

    def emit(self, logits, greedy):
        _, entropy = _entropy(logits)
        if greedy:
            symbol = F.one_hot(logits.argmax(dim=-1), self.vocab_size).to(logits.dtype)
        else:
            symbol = F.gumbel_softmax(logits, tau=self.temperature, hard=self.straight_through)
        return symbol.argmax(dim=-1), symbol, None, entropy


class ContinuousChannel(Channel):
    """One real vector of size V per position, fixed length: the no-bottleneck upper bound.
    ``tokens`` is a discretised view for analysis: the largest component among 1..V-1 (never EOS)."""

    def emit(self, logits, greedy):
        return logits[:, 1:].argmax(dim=-1) + 1, logits, None, None


def make_channel(
    method: str,
    hidden: int,
    vocab_size: int,
    max_len: int,
    cell: str = "gru",
    embed: int = 32,
    temperature: float = 1.0,
    *,
    layers: int = 1,
    heads: int = 4,
    temperature_learnable: bool = False,
    temperature_min: float = 0.5,
    memoryless: bool = False,
    per_position: bool = False,
) -> Channel:
    """The channel for ``method`` (one of :data:`METHODS`); the temperature options are the
    Gumbel-Softmax channels' (ignored by the others); ``memoryless`` and ``per_position``: see
    :class:`Channel`."""
    check_choice("method", method, METHODS)
    args = (hidden, vocab_size, max_len)
    kwargs = {"cell": cell, "embed": embed, "layers": layers, "heads": heads, "memoryless": memoryless,
              "per_position": per_position}
    if method == "reinforce":
        return ReinforceChannel(*args, **kwargs)
    if method == "continuous":
        return ContinuousChannel(*args, **kwargs)
    return GumbelChannel(*args, **kwargs, temperature=temperature, straight_through=method == "st-gumbel",
                         temperature_learnable=temperature_learnable, temperature_min=temperature_min)


def stopping_weights(eos_probs: torch.Tensor) -> torch.Tensor:
    """Probability that a message stops at each position, from per-position EOS probabilities.

    ``w_t = P(EOS at t) * prod_{s<t} (1 - P(EOS at s))`` and the never-stopped mass
    ``prod_s (1 - P(EOS at s))`` is added to the last position (the message is cut at ``max_len``),
    so each row sums to 1. The differentiable loss is ``sum_t w_t * loss_t`` (EGG,
    ``SenderReceiverRnnGS``), with ``loss_t`` the receiver's loss after reading t + 1 symbols.

    Args:
        eos_probs: ``(B, L)`` in [0, 1], e.g. the EOS component of relaxed one-hots.

    Returns:
        ``(B, L)`` weights, differentiable in ``eos_probs``.
    """
    survive = torch.cumprod(1.0 - eos_probs, dim=1)  # P(no EOS up to and including t)
    before = torch.cat([torch.ones_like(survive[:, :1]), survive[:, :-1]], dim=1)
    weights = before * eos_probs
    return torch.cat([weights[:, :-1], weights[:, -1:] + survive[:, -1:]], dim=1)
