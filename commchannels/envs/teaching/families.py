"""Student families: the kinds of student a teaching episode may draw, grouped in named presets.

A *family* fixes a student's network and optimiser (:class:`StudentSpec`: hidden widths and
depth, activation, initialisation scale, optimiser, batch size) and its data conditions (label
noise, class imbalance). A *preset* is a named distribution over families with two disjoint
splits: teachers train on the ``train`` families and are scored on the ``held-out`` ones, which
differ in at least one attribute never seen in training. Each reset draws every environment's
family uniformly from the split (``TeachingSettings.split``), so one batch mixes families.

Presets (``TeachingSettings.students``):

- ``mlp-fixed``: one family, the student of ``TeachingSettings.hidden`` / ``batch_size``
  trained by plain SGD with ReLU; its held-out split is the same family. Learning-rate grid
  ``lr_scales = (0.5, 1, 2, 4, 8)`` x ``base_lr``.
- ``mlp-arch``: architecture and optimiser vary (clean data). Training families: SGD, momentum
  and Adam; ReLU and tanh; depth 1 or 2; width 16 or 32; initialisation scale 1 or 3; batch 8
  or 16. Held out: depth 3, the ELU activation and the RMSprop optimiser, each unseen.
- ``mlp-data``: data conditions vary (SGD, ReLU, 32 hidden units). Training families: clean,
  label noise 0.2 and 0.5, class imbalance 0.1, both at once, batch 4. Held out: noise 0.35
  with imbalance 0.05, noise 0.7, and batch 4 with imbalance 0.2.

The varied presets use a wide learning-rate grid, ``lr_scales = (0.01, 0.03, ..., 10)`` x
``base_lr`` (0.001 to 1 at the default ``base_lr = 0.1``), since the best rate of an Adam student
and of an SGD student differ a hundredfold.

Label noise replaces a fraction of the training labels by a different class, drawn once per
family (a fixed generator), so "true label" targets are noisy while the teacher model's
distillation targets and the validation labels stay clean. Class imbalance keeps a fraction
``imbalance ** (c / (C - 1))`` of class ``c``'s training examples (the first ones), so class 0
stays whole and the last class keeps ``imbalance`` of its examples; every bucket is restricted
to the kept examples.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import torch

from commchannels.agents.students import StudentSpec

SPLITS = ("train", "held-out")
FIXED_SCALES = (0.5, 1.0, 2.0, 4.0, 8.0)
WIDE_SCALES = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)


@dataclass(frozen=True)
class StudentFamily:
    """One kind of student: its network and optimiser, and its data conditions."""

    name: str
    student: StudentSpec = field(default_factory=StudentSpec)
    label_noise: float = 0.0
    imbalance: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.label_noise < 1.0:
            raise ValueError(f"label_noise={self.label_noise} is invalid; expected a fraction in [0, 1)")
        if not 0.0 < self.imbalance <= 1.0:
            raise ValueError(f"imbalance={self.imbalance} is invalid; expected a fraction in (0, 1]")

    def attributes(self) -> dict[str, object]:
        """Every attribute but the name (nearest-family matching, tables)."""
        s = self.student
        return {"optimiser": s.optimiser, "activation": s.activation, "depth": len(s.hidden),
                "width": max(s.hidden), "init_scale": s.init_scale, "batch_size": s.batch_size,
                "label_noise": self.label_noise, "imbalance": self.imbalance}


def _arch(name: str, optimiser: str, activation: str, hidden: tuple[int, ...], init_scale: float = 1.0,
          batch_size: int = 16) -> StudentFamily:
    return StudentFamily(name, StudentSpec(hidden, activation, init_scale, optimiser, batch_size))


def _data(name: str, label_noise: float = 0.0, imbalance: float = 1.0, batch_size: int = 16) -> StudentFamily:
    return StudentFamily(name, StudentSpec((32,), batch_size=batch_size), label_noise, imbalance)


ARCH = (
    (_arch("sgd relu 32", "sgd", "relu", (32,)),
     _arch("sgd tanh 32", "sgd", "tanh", (32,)),
     _arch("sgd relu 32-32", "sgd", "relu", (32, 32)),
     _arch("sgd relu 32 init x3", "sgd", "relu", (32,), init_scale=3.0),
     _arch("momentum relu 32", "momentum", "relu", (32,)),
     _arch("momentum tanh 16 batch 8", "momentum", "tanh", (16,), batch_size=8),
     _arch("adam relu 32", "adam", "relu", (32,)),
     _arch("adam tanh 32-32 batch 8", "adam", "tanh", (32, 32), batch_size=8)),
    (_arch("sgd relu 32-32-32", "sgd", "relu", (32, 32, 32)),
     _arch("sgd elu 32", "sgd", "elu", (32,)),
     _arch("rmsprop relu 32", "rmsprop", "relu", (32,)),
     _arch("adam elu 16 batch 8", "adam", "elu", (16,), batch_size=8)),
)
DATA = (
    (_data("clean"), _data("noise 0.2", label_noise=0.2), _data("noise 0.5", label_noise=0.5),
     _data("imbalance 0.1", imbalance=0.1), _data("noise 0.2 imbalance 0.3", 0.2, 0.3),
     _data("batch 4", batch_size=4)),
    (_data("noise 0.35 imbalance 0.05", 0.35, 0.05), _data("noise 0.7", label_noise=0.7),
     _data("batch 4 imbalance 0.2", imbalance=0.2, batch_size=4)),
)
PRESETS = ("mlp-fixed", "mlp-arch", "mlp-data")


def preset_families(students: str, hidden: tuple[int, ...] = (32,),
                    batch_size: int = 16) -> tuple[tuple[StudentFamily, ...], tuple[StudentFamily, ...]]:
    """The ``(train, held_out)`` families of preset ``students`` (``hidden`` and ``batch_size``
    define the ``mlp-fixed`` student)."""
    if students == "mlp-fixed":
        fixed = (StudentFamily("mlp " + "-".join(map(str, hidden)), StudentSpec(tuple(hidden), batch_size=batch_size)),)
        return fixed, fixed
    if students == "mlp-arch":
        return ARCH
    if students == "mlp-data":
        return DATA
    raise ValueError(f"students={students!r} is not allowed; expected one of {PRESETS}")


def preset_lr_scales(students: str) -> tuple[float, ...]:
    """The learning-rate grid of a preset (``TeachingSettings.lr_scales=None``)."""
    return FIXED_SCALES if students == "mlp-fixed" else WIDE_SCALES


def noisy_labels(labels: torch.Tensor, n_classes: int, family: StudentFamily) -> torch.Tensor:
    """The family's training labels: a fixed ``label_noise`` fraction moved to another class."""
    if family.label_noise == 0.0:
        return labels
    generator = torch.Generator().manual_seed(zlib.crc32(family.name.encode()))
    flip = torch.rand(len(labels), generator=generator) < family.label_noise
    shift = torch.randint(1, n_classes, (len(labels),), generator=generator)
    return torch.where(flip, (labels + shift) % n_classes, labels)


def kept_examples(labels: torch.Tensor, n_classes: int, family: StudentFamily) -> torch.Tensor:
    """``(N,)`` bool: the training examples an imbalanced family keeps (the first of each class)."""
    if family.imbalance == 1.0:
        return torch.ones(len(labels), dtype=torch.bool)
    keep = torch.zeros(len(labels), dtype=torch.bool)
    for c in range(n_classes):
        members = (labels == c).nonzero().squeeze(1)
        fraction = family.imbalance ** (c / max(1, n_classes - 1))
        keep[members[: max(1, round(fraction * len(members)))]] = True
    return keep
