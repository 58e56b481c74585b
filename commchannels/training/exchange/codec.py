"""Wire format of exchanged predictions: optional top-k, then 32/16/8/4-bit probabilities.

A batch of class probabilities ``(B, C)`` becomes a short list of tensors, which is exactly
what crosses the wire (so ``numel * element_size`` of them is the byte count):

* ``topk=0``: the probabilities ``(B, C)``; ``topk=k``: the ``k`` largest ``(B, k)`` plus their
  class indices: two 4-bit indices per byte up to 16 classes, else uint8 (int16 beyond 256
  classes). The receiver spreads the missing mass uniformly over the other classes.
* ``bits=32`` float32, ``16`` float16, ``8`` uint8 levels of ``[0, 1]`` (probabilities need no
  per-tensor scale), ``4`` 4-bit levels packed two per byte.

4-bit fields are packed over the whole flattened ``(B, k)`` tensor, so a top-1 prediction of
up to 16 classes at 4 bits (its class and its probability) costs one byte per example.
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


NIBBLE_CLASSES = 16  # up to this many classes, a class index is sent in 4 bits


def _nibbles(count: int) -> TensorSpec:
    """``count`` 4-bit fields, two per byte."""
    return TensorSpec(((count + 1) // 2,), torch.uint8)


def _value_spec(rows: int, cols: int, bits: int) -> TensorSpec:
    if bits == 32:
        return TensorSpec((rows, cols), torch.float32)
    if bits == 16:
        return TensorSpec((rows, cols), torch.float16)
    if bits == 8:
        return TensorSpec((rows, cols), torch.uint8)
    return _nibbles(rows * cols)


def _index_spec(rows: int, cols: int, n_classes: int) -> TensorSpec:
    if n_classes <= NIBBLE_CLASSES:
        return _nibbles(rows * cols)
    return TensorSpec((rows, cols), torch.uint8 if n_classes <= 256 else torch.int16)


def message_specs(batch: int, n_classes: int, topk: int, bits: int) -> list[TensorSpec]:
    """The tensors of one encoded prediction message."""
    cols = topk if 0 < topk < n_classes else n_classes
    specs = [_value_spec(batch, cols, bits)]
    if cols < n_classes:
        specs.append(_index_spec(batch, cols, n_classes))
    return specs


def _pack_nibbles(values: torch.Tensor) -> torch.Tensor:
    """Integers in ``[0, 15]`` of any shape, packed two per uint8 in row-major order."""
    flat = values.reshape(-1).to(torch.uint8)
    if len(flat) % 2:
        flat = torch.cat([flat, flat.new_zeros(1)])
    return (flat[0::2] | (flat[1::2] << 4)).contiguous()


def _unpack_nibbles(data: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    return torch.stack([data & 0x0F, data >> 4], dim=1).reshape(-1)[: rows * cols].reshape(rows, cols)


def _quantise(values: torch.Tensor, bits: int) -> torch.Tensor:
    if bits == 32:
        return values.float().contiguous()
    if bits == 16:
        return values.half().contiguous()
    q = torch.round(values.clamp(0, 1) * (2**bits - 1)).to(torch.uint8)
    return q.contiguous() if bits == 8 else _pack_nibbles(q)


def _dequantise(data: torch.Tensor, bits: int, rows: int, cols: int) -> torch.Tensor:
    if bits in (32, 16):
        return data.float()
    if bits == 4:
        data = _unpack_nibbles(data, rows, cols)
    return data.float() / (2**bits - 1)


def encode(probs: torch.Tensor, topk: int, bits: int) -> list[torch.Tensor]:
    """Encode probabilities ``(B, C)`` into the tensors sent on the wire."""
    n_classes = probs.shape[1]
    if 0 < topk < n_classes:
        values, indices = probs.topk(topk, dim=1)
        if n_classes <= NIBBLE_CLASSES:
            wire = _pack_nibbles(indices)
        else:
            wire = indices.to(_index_spec(*indices.shape, n_classes).dtype).contiguous()
        return [_quantise(values, bits), wire]
    return [_quantise(probs, bits)]


def decode(message: list[torch.Tensor], rows: int, n_classes: int, topk: int, bits: int) -> torch.Tensor:
    """Rebuild a probability batch ``(rows, C)`` (rows sum to 1) from an encoded message."""
    cols = topk if 0 < topk < n_classes else n_classes
    values = _dequantise(message[0], bits, rows, cols)
    if cols == n_classes:
        probs = values
    else:
        indices = _unpack_nibbles(message[1], rows, cols) if n_classes <= NIBBLE_CLASSES else message[1]
        rest = (1.0 - values.sum(1, keepdim=True)).clamp_min(0) / (n_classes - cols)
        probs = rest.expand(-1, n_classes).clone()
        probs.scatter_(1, indices.long(), values)
    # Quantisation error leaves rows summing to about 1; renormalise so targets are distributions.
    probs = probs.clamp_min(0) + 1e-8
    return probs / probs.sum(1, keepdim=True)
