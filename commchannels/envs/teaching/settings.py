"""The teaching environment's rules as one validated, frozen settings object.

Every view (AEC, Parallel, Gymnasium), the batched core and the teacher trainer take these
options; they are declared and validated here once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from commchannels.config import Options, check_folder_path, option
from commchannels.data import DATASETS
from commchannels.envs.teaching.families import PRESETS, SPLITS, StudentFamily, preset_families, preset_lr_scales

REWARDS = ("time", "gain")


@dataclass(frozen=True)
class TeachingSettings(Options):
    """Rules of the teaching environment (the keyword arguments of ``teaching_v0.env``); a
    trainer's config nests them (``cfg.env``), so each option is declared and checked here only."""

    dataset: str = option("digits", "data set the students learn: digits, mnist1d, or mnist (IDX files "
                                    "in data_path)", choices=DATASETS)
    data_path: str | None = option(None, "folder of the MNIST IDX files (dataset=mnist only)")
    students: str = option("mlp-fixed", "the student families episodes draw from (a preset of "
                                        "commchannels.envs.teaching.families)", choices=PRESETS)
    split: str = option("train", "which families of the preset: train, or held-out (never seen in a "
                                 "teacher's training)", choices=SPLITS)
    hidden: tuple[int, ...] = option((32,), "hidden layer sizes of the mlp-fixed student", low=1, high=65536)
    batch_size: int = option(16, "examples per SGD update of the mlp-fixed student", low=1, high=1_000_000)
    base_lr: float = option(0.1, "the student's learning rate at scale 1", gt=0.0)
    lr_scales: tuple[float, ...] | None = option(None, "learning-rate scale levels the teacher chooses from "
                                                 "(None: the preset's grid)", gt=0.0)
    temperatures: tuple[float, ...] = option((2.0,), "distillation temperatures (target levels after true "
                                             "labels)", gt=0.0)
    n_difficulty: int = option(3, "number of difficulty buckets", low=1, high=1000)
    updates_per_step: int = option(10, "student SGD updates per directive (k)", low=1, high=100_000)
    horizon: int = option(40, "directives per episode (truncation)", low=1, high=1_000_000)
    target_accuracy: float | None = option(0.9, "validation accuracy that ends an episode (None: never)",
                                           low=0.0, high=1.0)
    reward: str = option("time", "shared reward: -1 per directive until the target (time) or the "
                                 "accuracy gain (gain)", choices=REWARDS)
    divergence_penalty: float | None = option(None, "reward on divergence is minus this (None: horizon for "
                                                    "reward=time, 1 for gain)", low=0.0)
    n_probe: int = option(10, "probe examples whose student outputs the teacher observes", low=1, high=100_000)
    max_val: int = option(1000, "at most this many validation examples", low=1, high=10_000_000)
    student_speaks: bool = option(False, "the student is a learning agent sending reports to the teacher")
    report_len: int = option(4, "tokens per student report", low=1, high=4096)
    report_vocab: int = option(8, "symbols per report token", low=2, high=65536)
    teacher_hidden: tuple[int, ...] = option((64,), "hidden sizes of the pre-trained teacher model", low=1,
                                             high=65536)
    teacher_epochs: int = option(30, "training epochs of the pre-trained teacher model", low=1, high=100_000)
    cache_dir: str | None = option(None, "where the teacher model is cached (default "
                                         "~/.cache/commchannels)")

    def validate(self) -> None:
        if self.lr_scales is None:  # resolved once, so every reader sees the grid in use
            object.__setattr__(self, "lr_scales", preset_lr_scales(self.students))
        if not self.lr_scales:
            raise ValueError(f"lr_scales={self.lr_scales!r} is invalid; expected positive scales")
        if self.dataset == "mnist" and self.data_path is None:
            raise ValueError("dataset='mnist' needs data_path pointing to a folder of MNIST IDX files")
        if self.cache_dir is not None:
            check_folder_path("cache_dir", self.cache_dir)

    @property
    def families(self) -> tuple[StudentFamily, ...]:
        """The student families of this split (:func:`preset_families`)."""
        train, held_out = preset_families(self.students, self.hidden, self.batch_size)
        return train if self.split == "train" else held_out

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
