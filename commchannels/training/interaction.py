"""The typed record of played games (EGG's ``Interaction``), which evaluation returns, the run
folder keeps and the metrics consume.

One :class:`Interaction` holds B games: what the sender saw, the message it sent (tokens after
the first EOS set to EOS) and its length, what the receiver saw and answered, the labels, the
meanings, and per-game auxiliaries (``aux``: tensors with B rows, such as ``correct``,
``candidate_ids`` or ``split``). ``info`` holds what describes every game alike
(``vocab_size``, ``attribute_sizes``, ``mode``, ``splits``: plain values).

``save`` writes it atomically (:func:`commchannels.runs.save_checkpoint`), ``load`` reads it with
``weights_only=True``; ``concat`` joins records of the same game (train and test evaluations),
``to`` moves every tensor. ``commchannels analyse RUN_DIR`` reads ``RUN_DIR/interaction.pt``.

>>> import torch
>>> a = Interaction(message=torch.tensor([[1, 0]]), message_length=torch.tensor([2]),
...                 meanings=torch.tensor([[3]]), aux={"correct": torch.tensor([1.0])})
>>> b = Interaction(message=torch.tensor([[2, 2]]), message_length=torch.tensor([2]),
...                 meanings=torch.tensor([[4]]), aux={"correct": torch.tensor([0.0])})
>>> both = Interaction.concat([a, b])
>>> len(both), both.meanings[:, 0].tolist(), both.summary()
(2, [3, 4], {'acc': 0.5, 'mean_length': 2.0})
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from commchannels.runs import load_checkpoint, save_checkpoint

FORMAT = "commchannels.Interaction"
VERSION = 1
INTERACTION_FILE = "interaction.pt"  # in a referential run folder: the final evaluation
LANGUAGE_FILE = "language.pt"  # the same language as plain tensors (the format before Interaction)
# per-game tensor fields, in the order of the EGG record
TENSOR_FIELDS = ("sender_input", "message", "message_length", "receiver_input", "receiver_output", "labels",
                 "meanings")


@dataclass
class Interaction:
    """B played games.

    Attributes:
        message: ``(B, L)`` long tokens, EOS (0) after the first EOS.
        message_length: ``(B,)`` tokens up to and including the first EOS (``L`` without one).
        sender_input: ``(B, S, *object_shape)`` what the sender saw (target first), or ``None``.
        receiver_input: ``(B, C, *object_shape)`` the candidates, or ``None``.
        receiver_output: ``(B, O)`` the receiver's logits after reading the message, or ``None``.
        labels: the right answers: ``(B,)`` target positions (discrimination) or ``(B, n_attributes)``
            attribute values (reconstruction), or ``None``.
        meanings: ``(B, n_attributes)`` the targets' attribute values, or ``None``.
        aux: per-game auxiliaries, each a tensor with B rows.
        info: plain values describing all games (``vocab_size``, ``attribute_sizes``, ...).
    """

    message: torch.Tensor
    message_length: torch.Tensor
    sender_input: torch.Tensor | None = None
    receiver_input: torch.Tensor | None = None
    receiver_output: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    meanings: torch.Tensor | None = None
    aux: dict[str, torch.Tensor] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.message, torch.Tensor) or self.message.dim() != 2:
            raise ValueError(f"message has shape {_shape(self.message)}; expected a (B, max_len) tensor of tokens")
        n = self.message.shape[0]
        for name in TENSOR_FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, torch.Tensor) or value.dim() == 0 or value.shape[0] != n:
                raise ValueError(f"{name} has shape {_shape(value)}; expected a tensor with {n} rows, one per game")
        if self.message_length.dim() != 1:
            raise ValueError(f"message_length has shape {_shape(self.message_length)}; expected ({n},)")
        if not isinstance(self.aux, dict) or not isinstance(self.info, dict):
            raise ValueError("aux and info must be dicts")
        for key, value in self.aux.items():
            if not isinstance(value, torch.Tensor) or value.dim() == 0 or value.shape[0] != n:
                raise ValueError(f"aux[{key!r}] has shape {_shape(value)}; expected a tensor with {n} rows")

    def __len__(self) -> int:
        return int(self.message.shape[0])

    # ------------------------------------------------------------------ transforms
    def replace(self, **changes: Any) -> Interaction:
        """A copy with some fields replaced (e.g. ``sender_input=None`` before saving)."""
        return dataclasses.replace(self, **changes)

    def apply(self, fn: Any) -> Interaction:
        """A copy with ``fn`` applied to every tensor (fields and ``aux``)."""
        tensors = {name: None if getattr(self, name) is None else fn(getattr(self, name)) for name in TENSOR_FIELDS}
        return Interaction(**tensors, aux={k: fn(v) for k, v in self.aux.items()}, info=dict(self.info))

    def to(self, device: str | torch.device) -> Interaction:
        """A copy with every tensor on ``device``."""
        return self.apply(lambda t: t.to(device))

    def detach(self) -> Interaction:
        """A copy without autograd history."""
        return self.apply(lambda t: t.detach())

    def __getitem__(self, rows: Any) -> Interaction:
        """The games selected by ``rows`` (a slice, indices or a boolean mask)."""
        return self.apply(lambda t: t[rows])

    @classmethod
    def concat(cls, parts: Sequence[Interaction]) -> Interaction:
        """The games of every part, in order. Parts must hold the same fields, ``aux`` keys and ``info``.

        Raises:
            ValueError: naming the field that differs.
        """
        parts = list(parts)
        if not parts:
            raise ValueError("Interaction.concat needs at least one interaction")
        first = parts[0]
        for i, part in enumerate(parts[1:], 1):
            for name in TENSOR_FIELDS:
                if (getattr(part, name) is None) != (getattr(first, name) is None):
                    raise ValueError(f"interaction {i} {'lacks' if getattr(part, name) is None else 'has'} "
                                     f"{name} but interaction 0 does not; expected the same fields")
            if set(part.aux) != set(first.aux):
                raise ValueError(f"interaction {i} has aux keys {sorted(part.aux)} but interaction 0 has "
                                 f"{sorted(first.aux)}; expected the same keys")
            if part.info != first.info:
                raise ValueError(f"interaction {i} has info {part.info} but interaction 0 has {first.info}; "
                                 "expected records of the same game")

        def cat(values: list[torch.Tensor | None]) -> torch.Tensor | None:
            return None if values[0] is None else torch.cat(values)

        tensors = {name: cat([getattr(p, name) for p in parts]) for name in TENSOR_FIELDS}
        aux = {key: torch.cat([p.aux[key] for p in parts]) for key in first.aux}
        return cls(**tensors, aux=aux, info=dict(first.info))

    # ------------------------------------------------------------------ summaries
    def summary(self) -> dict[str, float]:
        """``acc`` (mean of ``aux["correct"]``, when present) and ``mean_length``."""
        out = {}
        if "correct" in self.aux:
            out["acc"] = float(self.aux["correct"].float().mean())
        out["mean_length"] = float(self.message_length.float().mean())
        return out

    def attribute_accuracy(self) -> list[float]:
        """Reconstruction games: per attribute, the fraction of games whose receiver guessed its value
        (``aux["guess"]`` against ``labels``, both ``(B, n_attributes)``). It shows a language that
        names some attributes and not others.

        Raises:
            ValueError: when the record is not of reconstruction games with the receiver's guesses.
        """
        guesses = self.aux.get("guess")
        if self.labels is None or self.labels.dim() != 2 or guesses is None or guesses.shape != self.labels.shape:
            raise ValueError("attribute_accuracy needs reconstruction games: labels and aux['guess'], both "
                             "(B, n_attributes)")
        return (guesses == self.labels).float().mean(0).tolist()

    def split_masks(self) -> dict[str, torch.Tensor]:
        """``{split name: (B,) bool}`` from ``aux["split"]`` (indices into ``info["splits"]``);
        empty when the record has no split; splits without games are left out."""
        if "split" not in self.aux or "splits" not in self.info:
            return {}
        codes = self.aux["split"]
        return {name: codes == i for i, name in enumerate(self.info["splits"]) if bool((codes == i).any())}

    # ------------------------------------------------------------------ files
    def state_dict(self) -> dict[str, Any]:
        """Plain tensors and values (CPU, detached), loadable with ``weights_only=True``."""
        record = self.detach().to("cpu")
        return {"format": FORMAT, "version": VERSION,
                **{name: getattr(record, name) for name in TENSOR_FIELDS},
                "aux": dict(record.aux), "info": dict(record.info)}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any], where: str = "state") -> Interaction:
        """Rebuild :meth:`state_dict`.

        Raises:
            ValueError: naming ``where`` if the dict is not an interaction record.
        """
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            found = state.get("format") if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"{where} is not an interaction record (format {found!r}); expected one saved by "
                             "Interaction.save")
        if state.get("version") != VERSION:
            raise ValueError(f"{where} has interaction format version {state.get('version')!r}; expected {VERSION}")
        try:
            return cls(**{name: state.get(name) for name in TENSOR_FIELDS}, aux=dict(state.get("aux") or {}),
                       info=dict(state.get("info") or {}))
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where}: {err}") from None

    def save(self, path: str | os.PathLike) -> None:
        """Write the record atomically (tensors moved to the CPU)."""
        save_checkpoint(path, self.state_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> Interaction:
        """Read a record written by :meth:`save` (``weights_only=True``, on the CPU).

        Raises:
            FileNotFoundError: no file at ``path``.
            ValueError: the file is unreadable or not an interaction record (naming it).
        """
        return cls.from_state_dict(load_checkpoint(path), where=str(path))


def language_file(interaction: Interaction) -> dict[str, Any]:
    """The language of ``interaction`` in the ``language.pt`` format: ``meanings``, ``messages``,
    ``attribute_sizes``, ``vocab_size`` and ``split`` (one name per message)."""
    if interaction.meanings is None:
        raise ValueError("language_file needs an interaction with meanings")
    names = list(interaction.info.get("splits", []))
    split = [names[i] for i in interaction.aux["split"].tolist()] if "split" in interaction.aux and names else None
    data = {"meanings": interaction.meanings.detach().cpu(), "messages": interaction.message.detach().cpu(),
            "attribute_sizes": list(interaction.info["attribute_sizes"]),
            "vocab_size": int(interaction.info["vocab_size"])}
    return data if split is None else {**data, "split": split}


def _shape(value: Any) -> str:
    return str(tuple(value.shape)) if isinstance(value, torch.Tensor) else type(value).__name__
