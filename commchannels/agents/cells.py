"""Cells: what unrolls a sender's message one symbol at a time, and what reads a message.

==============  ============================================  ===========================================
cell            sender head (:func:`make_sender_cell`)        receiver reader (:func:`make_reader`)
==============  ============================================  ===========================================
``gru``         ``layers`` stacked ``GRUCell``; the first     ``nn.GRU`` with ``layers`` layers
                starts from the sender's hidden vector, the
                others from zeros (EGG's ``RnnSenderGS``)
``lstm``        the same with ``LSTMCell`` (cells start at 0)  ``nn.LSTM`` with ``layers`` layers
``transformer`` causal decoder-only Transformer: position 0   Transformer encoder over each prefix of the
                is the sender's hidden vector, then one       message (a padding mask hides the symbols
                position per symbol fed back; the next        after it), read at a leading summary
                symbol is read at the last position           position (EGG's ``TransformerReceiver``)
==============  ============================================  ===========================================

Transformers work at the agent's hidden size with learned positional embeddings,
``heads`` attention heads, a feed-forward layer twice as wide, pre-layer-norm and no dropout
(small games, deterministic runs). A receiver answers after every position, so the
Transformer reader encodes each of the ``L`` prefixes (``L`` times the work of one pass): the
answer after ``t + 1`` symbols never sees the symbols after them, as with a recurrent reader.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from commchannels.config import check_choice, check_int

CELLS = ("gru", "lstm", "transformer")
MAX_LAYERS = 64


def check_cell_options(cell: str, hidden: int, layers: int = 1, heads: int = 4, what: str = "hidden") -> None:
    """Raise ``ValueError`` naming the option unless ``cell`` / ``layers`` / ``heads`` fit ``hidden``."""
    check_choice("cell", cell, CELLS)
    check_int(what, hidden, 1)
    check_int("layers", layers, 1, MAX_LAYERS)
    check_int("heads", heads, 1)
    if cell == "transformer" and hidden % heads:
        raise ValueError(f"heads={heads} does not divide {what}={hidden}; expected a number of attention "
                         f"heads dividing the Transformer's width ({what})")


def transformer_stack(width: int, layers: int, heads: int) -> nn.TransformerEncoder:
    """``layers`` pre-norm Transformer layers of ``width`` with ``heads`` heads, no dropout."""
    layer = nn.TransformerEncoderLayer(width, heads, dim_feedforward=2 * width, dropout=0.0,
                                       batch_first=True, norm_first=True)
    return nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(width), enable_nested_tensor=False)


def causal_mask(n: int, device: torch.device | None = None) -> torch.Tensor:
    """``(n, n)`` bool mask, True above the diagonal (a position never attends to later ones)."""
    return torch.ones(n, n, dtype=torch.bool, device=device).triu(1)


# ---------------------------------------------------------------------- sender heads
class RecurrentCell(nn.Module):
    """``layers`` stacked ``GRUCell`` / ``LSTMCell``: ``(input (B, E), state) -> (output (B, H), state)``."""

    def __init__(self, cell: str, input_size: int, hidden: int, layers: int = 1) -> None:
        super().__init__()
        check_cell_options(cell, hidden, layers)
        if cell == "transformer":
            raise ValueError("cell='transformer' is not recurrent; use TransformerCell")
        make = nn.GRUCell if cell == "gru" else nn.LSTMCell
        self.lstm = cell == "lstm"
        self.cells = nn.ModuleList([make(input_size if i == 0 else hidden, hidden) for i in range(layers)])

    def start(self, hidden: torch.Tensor) -> list[Any]:
        """Initial state: the sender's hidden vector in the first layer, zeros elsewhere."""
        states = [hidden] + [torch.zeros_like(hidden) for _ in self.cells[1:]]
        return [(h, torch.zeros_like(h)) for h in states] if self.lstm else states

    def forward(self, inputs: torch.Tensor, state: list[Any]) -> tuple[torch.Tensor, list[Any]]:
        new_state = []
        for cell, layer_state in zip(self.cells, state):
            layer_state = cell(inputs, layer_state)
            new_state.append(layer_state)
            inputs = layer_state[0] if self.lstm else layer_state
        return inputs, new_state


class TransformerCell(nn.Module):
    """A causal decoder-only Transformer unrolled one position at a time.

    The state is the list of position inputs so far: the sender's hidden vector, then each fed-back
    symbol embedding projected to the hidden size. Every call appends one position and returns
    the output at it (the whole prefix is re-encoded: messages are short).

    Args:
        input_size: size of the fed-back symbol embeddings.
        hidden: the Transformer's width (the sender's hidden size).
        max_len: positions after the hidden vector (the message length).
        layers: Transformer layers.
        heads: attention heads (divides ``hidden``).
    """

    def __init__(self, input_size: int, hidden: int, max_len: int, layers: int = 1, heads: int = 4) -> None:
        super().__init__()
        check_cell_options("transformer", hidden, layers, heads)
        self.max_len = check_int("max_len", max_len, 1)
        self.project = nn.Linear(input_size, hidden)
        self.position = nn.Parameter(torch.randn(max_len + 1, hidden) * 0.02)
        self.stack = transformer_stack(hidden, layers, heads)

    def start(self, hidden: torch.Tensor) -> list[torch.Tensor]:
        return [hidden]

    def forward(self, inputs: torch.Tensor, state: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        state = [*state, self.project(inputs)]
        n = len(state)
        if n > self.max_len + 1:
            raise ValueError(f"TransformerCell was built for max_len={self.max_len} positions, got {n - 1}")
        sequence = torch.stack(state, dim=1) + self.position[:n]
        out = self.stack(sequence, mask=causal_mask(n, sequence.device), is_causal=True)
        return out[:, -1], state


def make_sender_cell(
    cell: str, input_size: int, hidden: int, max_len: int, layers: int = 1, heads: int = 4
) -> RecurrentCell | TransformerCell:
    """The sender head for ``cell`` (one of :data:`CELLS`)."""
    check_choice("cell", cell, CELLS)
    if cell == "transformer":
        return TransformerCell(input_size, hidden, max_len, layers, heads)
    return RecurrentCell(cell, input_size, hidden, layers)


# ---------------------------------------------------------------------- receiver readers
class RecurrentReader(nn.Module):
    """``(B, L, E)`` symbol embeddings -> ``(B, L, H)`` states after each position (GRU / LSTM)."""

    def __init__(self, cell: str, input_size: int, hidden: int, layers: int = 1) -> None:
        super().__init__()
        check_cell_options(cell, hidden, layers)
        rnn = {"gru": nn.GRU, "lstm": nn.LSTM}[cell]
        self.rnn = rnn(input_size, hidden, num_layers=layers, batch_first=True)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.rnn(inputs)[0]


class TransformerReader(nn.Module):
    """``(B, L, E)`` symbol embeddings -> ``(B, L, H)``: output ``t`` encodes symbols ``0..t``.

    Each prefix is a sequence ``[summary, symbol_0, ..., symbol_{L-1}]`` whose padding mask hides
    the symbols after ``t``; the output is the encoded summary position (a learned vector).

    Args:
        input_size: symbol embedding size.
        hidden: the Transformer's width (the receiver's hidden size).
        max_len: longest message read.
        layers: Transformer layers.
        heads: attention heads (divides ``hidden``).
    """

    def __init__(self, input_size: int, hidden: int, max_len: int, layers: int = 1, heads: int = 4) -> None:
        super().__init__()
        check_cell_options("transformer", hidden, layers, heads)
        self.max_len = check_int("max_len", max_len, 1)
        self.project = nn.Linear(input_size, hidden)
        self.summary = nn.Parameter(torch.randn(hidden) * 0.02)
        self.position = nn.Parameter(torch.randn(max_len + 1, hidden) * 0.02)
        self.stack = transformer_stack(hidden, layers, heads)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        b, n = inputs.shape[:2]
        if n > self.max_len:
            raise ValueError(f"the receiver was built for messages of at most max_len={self.max_len} "
                             f"symbols, got {n}")
        sequence = torch.cat([self.summary.expand(b, 1, -1), self.project(inputs)], dim=1)
        sequence = sequence + self.position[: n + 1]
        prefixes = sequence[:, None].expand(b, n, n + 1, -1).reshape(b * n, n + 1, -1)
        ends = torch.arange(1, n + 1, device=inputs.device)
        padding = torch.arange(n + 1, device=inputs.device)[None, :] > ends[:, None]  # (n, n + 1)
        out = self.stack(prefixes, src_key_padding_mask=padding.repeat(b, 1))
        return out[:, 0].reshape(b, n, -1)


def make_reader(
    cell: str, input_size: int, hidden: int, max_len: int | None = None, layers: int = 1, heads: int = 4
) -> RecurrentReader | TransformerReader:
    """The receiver's message reader for ``cell``; the Transformer needs ``max_len``."""
    check_choice("cell", cell, CELLS)
    if cell == "transformer":
        if max_len is None:
            raise ValueError("cell='transformer' needs max_len (the longest message, for its positions)")
        return TransformerReader(input_size, hidden, max_len, layers, heads)
    return RecurrentReader(cell, input_size, hidden, layers)
