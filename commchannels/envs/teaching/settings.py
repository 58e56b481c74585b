"""The teaching environment's rules as one validated, frozen settings object.

Every view (AEC, Parallel, Gymnasium) and the batched core take these keyword arguments; they
are validated here once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from commchannels.config import check_choice, check_range
from commchannels.data import DATASETS

REWARDS = ("time", "gain")


@dataclass(frozen=True)
class TeachingSettings:
    """Rules of the teaching environment (the keyword arguments of ``teaching_v0.env``).

    Attributes:
        dataset: ``"digits"``, ``"mnist1d"`` or ``"mnist"`` (IDX files in ``data_path``).
        data_path: folder of the MNIST IDX files (``dataset="mnist"`` only).
        hidden: the student MLP's hidden layer sizes.
        batch_size: examples per SGD update.
        base_lr: the student's learning rate at scale 1.
        lr_scales: learning-rate scale levels the teacher chooses from.
        temperatures: distillation temperatures (target levels after "true labels").
        n_difficulty: number of difficulty buckets.
        updates_per_step: SGD updates per directive (``k``).
        horizon: directives per episode (truncation).
        target_accuracy: validation accuracy that ends the episode (``None``: never).
        reward: ``"time"`` (-1 per directive until the target) or ``"gain"`` (accuracy gain).
        divergence_penalty: reward on divergence is ``-divergence_penalty`` (default: ``horizon``
            for ``reward="time"``, 1 for ``"gain"``).
        n_probe: probe examples whose student outputs the teacher observes.
        max_val: at most this many validation examples.
        student_speaks: the student is an agent that reports ``report_len`` tokens.
        report_len: tokens per student report.
        report_vocab: symbols per report token.
        teacher_hidden: hidden sizes of the pre-trained teacher model.
        teacher_epochs: training epochs of the pre-trained teacher model.
        cache_dir: where the teacher model is cached (default ``~/.cache/commchannels``).
    """

    dataset: str = "digits"
    data_path: str | None = None
    hidden: tuple[int, ...] = (32,)
    batch_size: int = 16
    base_lr: float = 0.1
    lr_scales: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0)
    temperatures: tuple[float, ...] = (2.0,)
    n_difficulty: int = 3
    updates_per_step: int = 10
    horizon: int = 40
    target_accuracy: float | None = 0.9
    reward: str = "time"
    divergence_penalty: float | None = None
    n_probe: int = 10
    max_val: int = 1000
    student_speaks: bool = False
    report_len: int = 4
    report_vocab: int = 8
    teacher_hidden: tuple[int, ...] = (64,)
    teacher_epochs: int = 30
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        check_choice("dataset", self.dataset, DATASETS)
        check_choice("reward", self.reward, REWARDS)
        for name in ("hidden", "lr_scales", "temperatures", "teacher_hidden"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        for name in ("batch_size", "n_difficulty", "updates_per_step", "horizon", "n_probe", "max_val",
                     "report_len", "teacher_epochs"):
            check_range(name, getattr(self, name), 1, None)
        check_range("report_vocab", self.report_vocab, 2, None)
        if self.base_lr <= 0 or not math.isfinite(self.base_lr):
            raise ValueError(f"base_lr={self.base_lr!r} is invalid; expected a finite value > 0")
        if not self.lr_scales or any(not s > 0 for s in self.lr_scales):
            raise ValueError(f"lr_scales={self.lr_scales!r} is invalid; expected positive scales")
        if any(not t > 0 for t in self.temperatures):
            raise ValueError(f"temperatures={self.temperatures!r} is invalid; expected values > 0")
        if any(h < 1 for h in (*self.hidden, *self.teacher_hidden)):
            raise ValueError(f"hidden={self.hidden!r} / teacher_hidden={self.teacher_hidden!r} are invalid; "
                             f"expected layer sizes >= 1")
        if self.target_accuracy is not None:
            check_range("target_accuracy", self.target_accuracy, 0.0, 1.0)
        if self.divergence_penalty is not None:
            check_range("divergence_penalty", self.divergence_penalty, 0.0, None)
        if self.dataset == "mnist" and self.data_path is None:
            raise ValueError("dataset='mnist' needs data_path pointing to a folder of MNIST IDX files")

    @property
    def penalty(self) -> float:
        """The divergence penalty actually used."""
        if self.divergence_penalty is not None:
            return float(self.divergence_penalty)
        return float(self.horizon) if self.reward == "time" else 1.0

    @property
    def plain_lr_level(self) -> int:
        """The level whose scale is closest to 1 (plain SGD)."""
        return min(range(len(self.lr_scales)), key=lambda i: abs(math.log(self.lr_scales[i])))
