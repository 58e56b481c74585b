"""Wire format of exchanged predictions: optional top-k, then 32/16/8/4-bit probabilities.

A batch of class probabilities ``(B, C)`` becomes a short list of tensors, which is exactly
what crosses the wire (so ``numel * element_size`` of them is the byte count):

* ``topk=0``: the probabilities ``(B, C)``; ``topk=k``: the ``k`` largest ``(B, k)`` plus their
  class indices ``(B, k)`` as uint8 (int16 beyond 256 classes). The receiver spreads the
  missing mass uniformly over the other classes.
* ``bits=32`` float32, ``16`` float16, ``8`` uint8 levels of ``[0, 1]`` (probabilities need no
  per-tensor scale), ``4`` two 4-bit levels packed per uint8.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class TensorSpec:
    """Shape and dtype of one tensor a receiver must allocate before a message arrives."""

    shape: tuple[int, ...]
    dtype: torch.dtype

    @property
    def nbytes(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n * torch.empty((), dtype=self.dtype).element_size()


def _value_spec(rows: int, cols: int, bits: int) -> TensorSpec:
    if bits == 32:
        return TensorSpec((rows, cols), torch.float32)
    if bits == 16:
        return TensorSpec((rows, cols), torch.float16)
    if bits == 8:
        return TensorSpec((rows, cols), torch.uint8)
    return TensorSpec((rows, (cols + 1) // 2), torch.uint8)


def message_specs(batch: int, n_classes: int, topk: int, bits: int) -> list[TensorSpec]:
    """The tensors of one encoded prediction message."""
    cols = topk if 0 < topk < n_classes else n_classes
    specs = [_value_spec(batch, cols, bits)]
    if cols < n_classes:
        specs.append(TensorSpec((batch, cols), torch.uint8 if n_classes <= 256 else torch.int16))
    return specs


def _quantise(values: torch.Tensor, bits: int) -> torch.Tensor:
    if bits == 32:
        return values.float().contiguous()
    if bits == 16:
        return values.half().contiguous()
    levels = 2**bits - 1
    q = torch.round(values.clamp(0, 1) * levels).to(torch.uint8)
    if bits == 8:
        return q.contiguous()
    if q.shape[1] % 2:
        q = torch.cat([q, q.new_zeros(q.shape[0], 1)], dim=1)
    return (q[:, 0::2] | (q[:, 1::2] << 4)).contiguous()


def _dequantise(data: torch.Tensor, bits: int, cols: int) -> torch.Tensor:
    if bits in (32, 16):
        return data.float()
    levels = 2**bits - 1
    if bits == 4:
        data = torch.stack([data & 0x0F, data >> 4], dim=2).reshape(data.shape[0], -1)[:, :cols]
    return data.float() / levels


def encode(probs: torch.Tensor, topk: int, bits: int) -> list[torch.Tensor]:
    """Encode probabilities ``(B, C)`` into the tensors sent on the wire."""
    n_classes = probs.shape[1]
    if 0 < topk < n_classes:
        values, indices = probs.topk(topk, dim=1)
        index_dtype = torch.uint8 if n_classes <= 256 else torch.int16
        return [_quantise(values, bits), indices.to(index_dtype).contiguous()]
    return [_quantise(probs, bits)]


def decode(message: list[torch.Tensor], n_classes: int, topk: int, bits: int) -> torch.Tensor:
    """Rebuild a probability batch ``(B, C)`` (rows sum to 1) from an encoded message."""
    cols = topk if 0 < topk < n_classes else n_classes
    values = _dequantise(message[0], bits, cols)
    if cols == n_classes:
        probs = values
    else:
        indices = message[1].long()
        rest = (1.0 - values.sum(1, keepdim=True)).clamp_min(0) / (n_classes - cols)
        probs = rest.expand(-1, n_classes).clone()
        probs.scatter_(1, indices, values)
    # Quantisation error leaves rows summing to about 1; renormalise so targets are distributions.
    probs = probs.clamp_min(0) + 1e-8
    return probs / probs.sum(1, keepdim=True)
