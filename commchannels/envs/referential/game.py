"""The referential game base class: what is sampled, what counts as right, and the rules.

A game subclass defines only its objects (``make_pool``). Everything else — batched sampling of
targets and distractors, rewards, the differentiable loss, spaces, views — comes from here, so a
new game is one small class (see ``examples/colour_game.py``).

Rules (Lewis 1969; Lazaridou et al. 2017): a *sender* sees a target object (and, optionally, the
candidates) and emits up to ``max_len`` tokens from ``vocab_size`` symbols, token 0 ending the
message early. A *receiver* reads the message and either picks the target among
``n_candidates`` shuffled objects (``mode="discrimination"``) or outputs the target's attribute
values (``mode="reconstruction"``). Both are rewarded for a correct answer; an optional
``length_cost`` per token is charged to the sender.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from commchannels.config import check_bool, check_choice, check_float, check_int

EOS = 0
MODES = ("discrimination", "reconstruction")
SPLITS = ("train", "test")
# Upper bounds of the rules' sizes: far above any experiment, low enough that a typo
# (vocab_size=10**9) fails at once instead of allocating embeddings and spaces until it dies.
MAX_CANDIDATES = 2**16
MAX_VOCAB_SIZE = 2**20
MAX_LEN = 1024


@dataclass(frozen=True)
class ObjectPool:
    """The objects of one split.

    Attributes:
        features: ``(N, *object_shape)`` float32, what agents see.
        attributes: ``(N, n_attributes)`` long, the meaning (reconstruction targets, metrics).
        classes: ``(N,)`` long in ``[0, n_classes)``; objects of one class are interchangeable,
            so distractors are drawn from classes other than the target's (and each other's).
    """

    features: torch.Tensor
    attributes: torch.Tensor
    classes: torch.Tensor

    @property
    def n_classes(self) -> int:
        return int(self.classes.max().item()) + 1 if len(self.classes) else 0


@dataclass(frozen=True)
class GameBatch:
    """B games after reset (all tensors have leading dimension B).

    Attributes:
        sender_objects: ``(B, S, *object_shape)``; S is 1, or ``n_candidates`` with the target first.
        candidates: ``(B, C, *object_shape)``, shuffled, as the receiver sees them.
        target_position: ``(B,)`` index of the target among ``candidates``.
        target_attributes: ``(B, n_attributes)`` the target's meaning.
        candidate_ids: ``(B, C)`` indices into the split's pool (for analysis and rendering).
    """

    sender_objects: torch.Tensor
    candidates: torch.Tensor
    target_position: torch.Tensor
    target_attributes: torch.Tensor
    candidate_ids: torch.Tensor

    @property
    def batch_size(self) -> int:
        return int(self.target_position.shape[0])

    @property
    def target_ids(self) -> torch.Tensor:
        return self.candidate_ids.gather(1, self.target_position[:, None]).squeeze(1)


class ReferentialGame(ABC):
    """Base of every referential game. Subclasses set ``name``, ``object_shape``,
    ``attribute_sizes`` (and ``feature_bounds`` / ``is_image`` where the defaults do not fit)
    and implement :meth:`make_pool`.

    Args:
        n_candidates: objects shown to the receiver (target + distractors), in [2, 65536].
        vocab_size: message symbols (symbol 0 ends a message), in [2, 2**20].
        max_len: maximum message length, in [1, 1024].
        mode: ``"discrimination"`` (pick the target) or ``"reconstruction"`` (output its attributes).
        sender_sees_candidates: the sender also sees the distractors (target first).
        length_cost: reward charged to the sender per token sent (EOS included), >= 0.
    """

    name: str = "game"
    object_shape: tuple[int, ...] = ()
    attribute_sizes: tuple[int, ...] = ()
    feature_bounds: tuple[float, float] = (0.0, 1.0)
    is_image: bool = False

    def __init__(
        self,
        *,
        n_candidates: int = 5,
        vocab_size: int = 16,
        max_len: int = 4,
        mode: str = "discrimination",
        sender_sees_candidates: bool = False,
        length_cost: float = 0.0,
    ) -> None:
        self.n_candidates = check_int("n_candidates", n_candidates, 2, MAX_CANDIDATES)
        self.vocab_size = check_int("vocab_size", vocab_size, 2, MAX_VOCAB_SIZE)
        self.max_len = check_int("max_len", max_len, 1, MAX_LEN)
        check_choice("mode", mode, MODES)
        self.mode = mode
        self.sender_sees_candidates = check_bool("sender_sees_candidates", sender_sees_candidates)
        self.length_cost = check_float("length_cost", length_cost, 0.0)
        self._pools: dict[str, _IndexedPool] = {}

    # ----------------------------------------------------------------- subclass API
    @abstractmethod
    def make_pool(self, split: str) -> ObjectPool:
        """The objects of ``split`` (``"train"`` or ``"test"``); called once per split."""

    def describe_object(self, features: torch.Tensor, attributes: torch.Tensor) -> str:
        """One object as short text (for ``render_mode="ansi"``)."""
        return "(" + ",".join(str(int(a)) for a in attributes) + ")"

    def object_image(self, features: torch.Tensor) -> torch.Tensor | None:
        """One object as an ``(H, W)`` or ``(H, W, 3)`` image in [0, 1], or None (not an image game)."""
        return None

    # ----------------------------------------------------------------- derived
    @property
    def n_attributes(self) -> int:
        return len(self.attribute_sizes)

    @property
    def sender_views(self) -> int:
        """How many objects the sender sees (1, or ``n_candidates``)."""
        return self.n_candidates if self.sender_sees_candidates else 1

    @property
    def receiver_output_size(self) -> int:
        """Logits a receiver network outputs: one per candidate, or one per attribute value."""
        return self.n_candidates if self.mode == "discrimination" else sum(self.attribute_sizes)

    def pool(self, split: str = "train") -> ObjectPool:
        """The (cached) object pool of ``split``."""
        return self._indexed(split).pool

    def _indexed(self, split: str) -> _IndexedPool:
        if split not in self._pools:
            check_choice("split", split, SPLITS)
            indexed = _IndexedPool(self.make_pool(split))
            if self.mode == "discrimination" and indexed.n_classes < self.n_candidates:
                raise ValueError(
                    f"n_candidates={self.n_candidates} is more than the {indexed.n_classes} distinct "
                    f"objects of the {self.name!r} {split} split; expected n_candidates <= {indexed.n_classes}"
                )
            self._pools[split] = indexed
        return self._pools[split]

    # ----------------------------------------------------------------- batched rules
    def sample(self, batch_size: int, generator: torch.Generator, split: str = "train") -> GameBatch:
        """Draw B targets with distractors of other classes, shuffled for the receiver."""
        indexed = self._indexed(split)
        c = self.n_candidates
        classes = indexed.sample_distinct_classes(batch_size, c, generator)  # target class first
        ids = indexed.sample_members(classes, generator)  # (B, C)
        order = torch.rand(batch_size, c, generator=generator).argsort(dim=1)
        shuffled = ids.gather(1, order)
        target_position = (order == 0).long().argmax(dim=1)
        features = indexed.pool.features
        sender_ids = ids if self.sender_sees_candidates else ids[:, :1]
        return GameBatch(
            sender_objects=features[sender_ids],
            candidates=features[shuffled],
            target_position=target_position,
            target_attributes=indexed.pool.attributes[ids[:, 0]],
            candidate_ids=shuffled,
        )

    def check_messages(self, messages: torch.Tensor) -> None:
        """Raise ``ValueError`` unless ``messages`` holds tokens in ``[0, vocab_size)``."""
        if messages.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
            raise ValueError(f"message tokens must be integers, got dtype {messages.dtype}")
        low, high = torch.aminmax(messages)
        if int(low) < 0 or int(high) >= self.vocab_size:
            value = int(low) if int(low) < 0 else int(high)
            raise ValueError(f"message token {value} is out of range; expected 0 <= token < "
                             f"vocab_size={self.vocab_size}")

    def message_lengths(self, messages: torch.Tensor) -> torch.Tensor:
        """Tokens up to and including the first EOS (0), or ``max_len`` without one: ``(B,)``."""
        is_eos = messages == EOS
        # cumsum == 0 marks positions strictly before the first EOS
        before_eos = (is_eos.cumsum(dim=1) == 0).sum(dim=1)
        return torch.where(is_eos.any(dim=1), before_eos + 1, before_eos)

    def mask_after_eos(self, messages: torch.Tensor) -> torch.Tensor:
        """Messages with every token after the first EOS set to EOS (what the receiver reads)."""
        positions = torch.arange(messages.shape[1], device=messages.device)
        return torch.where(positions < self.message_lengths(messages)[:, None], messages, EOS)

    def check_guesses(self, guesses: torch.Tensor) -> None:
        """Raise ``ValueError`` unless ``guesses`` are valid receiver actions."""
        if self.mode == "discrimination":
            low, high = torch.aminmax(guesses) if guesses.numel() else (0, 0)
            if guesses.dim() != 1 or int(low) < 0 or int(high) >= self.n_candidates:
                raise ValueError(f"receiver action {guesses.tolist()[:4]} is invalid; expected a "
                                 f"candidate index in [0, {self.n_candidates})")
            return
        sizes = torch.tensor(self.attribute_sizes)
        if guesses.dim() != 2 or guesses.shape[1] != self.n_attributes or bool(
            ((guesses < 0) | (guesses >= sizes)).any()
        ):
            raise ValueError(f"receiver action {guesses.tolist()[:2]} is invalid; expected "
                             f"{self.n_attributes} attribute values below {list(self.attribute_sizes)}")

    def score(self, batch: GameBatch, guesses: torch.Tensor) -> torch.Tensor:
        """Task reward in [0, 1] per game: 1 for the right pick; in reconstruction, the
        fraction of attributes right (1 when the whole target is reconstructed)."""
        if self.mode == "discrimination":
            return (guesses == batch.target_position).float()
        return (guesses == batch.target_attributes).float().mean(dim=1)

    def rewards(
        self,
        batch: GameBatch,
        messages: torch.Tensor,
        guesses: torch.Tensor,
        lengths: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Rewards of B finished games: ``sender``, ``receiver``, ``correct`` (all ``(B,)``).
        ``lengths`` (default: :meth:`message_lengths`) is passed by callers that track it."""
        correct = self.score(batch, guesses)
        if self.length_cost == 0.0:
            return {"sender": correct, "receiver": correct, "correct": correct}
        lengths = self.message_lengths(messages) if lengths is None else lengths
        sender = correct - self.length_cost * lengths.float()
        return {"sender": sender, "receiver": correct, "correct": correct}

    def receiver_loss(self, batch: GameBatch, receiver_output: torch.Tensor) -> torch.Tensor:
        """Differentiable per-game loss of receiver logits ``(B, receiver_output_size)``:
        cross-entropy over candidates, or summed over attributes in reconstruction."""
        if self.mode == "discrimination":
            return F.cross_entropy(receiver_output, batch.target_position, reduction="none")
        losses = [
            F.cross_entropy(logits, batch.target_attributes[:, i], reduction="none")
            for i, logits in enumerate(receiver_output.split(list(self.attribute_sizes), dim=-1))
        ]
        return torch.stack(losses, dim=-1).sum(dim=-1)

    def guess_from_output(self, receiver_output: torch.Tensor) -> torch.Tensor:
        """Greedy receiver action from logits: ``(B,)`` or ``(B, n_attributes)``."""
        if self.mode == "discrimination":
            return receiver_output.argmax(dim=-1)
        parts = receiver_output.split(list(self.attribute_sizes), dim=-1)
        return torch.stack([p.argmax(dim=-1) for p in parts], dim=-1)


class _IndexedPool:
    """A pool with its objects grouped by class, for O(B*C) sampling of distinct classes."""

    def __init__(self, pool: ObjectPool) -> None:
        n = len(pool.classes)
        if pool.features.shape[0] != n or pool.attributes.shape[0] != n:
            raise ValueError(f"pool tensors disagree on the number of objects: features "
                             f"{tuple(pool.features.shape)}, attributes {tuple(pool.attributes.shape)}, "
                             f"classes {tuple(pool.classes.shape)}")
        _, classes = torch.unique(pool.classes, return_inverse=True)  # relabel to 0..K-1
        self.pool = ObjectPool(pool.features.float().contiguous(), pool.attributes.long(), classes)
        self.n_classes = pool.n_classes if n == 0 else int(classes.max()) + 1
        self.members = torch.argsort(classes, stable=True)
        counts = torch.bincount(classes, minlength=self.n_classes)
        self.counts = counts
        self.singletons = bool((counts == 1).all())
        self.offsets = torch.cumsum(counts, 0) - counts

    def sample_distinct_classes(self, b: int, c: int, generator: torch.Generator) -> torch.Tensor:
        """``(b, c)`` classes, distinct within each row."""
        k = self.n_classes
        if k <= 64:  # few classes: a random permutation per row is cheapest
            return torch.rand(b, k, generator=generator).argsort(dim=1)[:, :c]
        # many classes: rejection sampling; a repeat is rare (about c^2 / 2k of rows)
        classes = torch.randint(k, (b, c), generator=generator)
        while True:
            ordered = classes.sort(dim=1).values
            clash = (ordered[:, 1:] == ordered[:, :-1]).any(dim=1)
            if not bool(clash.any()):
                return classes
            rows = clash.nonzero().squeeze(1)
            classes[rows] = torch.randint(k, (len(rows), c), generator=generator)

    def sample_members(self, classes: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """One object id per entry of ``classes``, uniform within its class."""
        if self.singletons:
            return self.members[self.offsets[classes]]
        counts = self.counts[classes]
        within = (torch.rand(classes.shape, generator=generator) * counts).long()
        return self.members[self.offsets[classes] + within]
