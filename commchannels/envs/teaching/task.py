"""The teaching task: data, validation and probe sets, data buckets and distillation targets.

Built once per configuration and shared (read-only) by every environment that uses it:

- training set: the data set's training split; the student's batches are drawn from it.
- validation set: the data set's test split (at most ``max_val`` examples, a fixed subset);
  the student is evaluated on it after every directive and the reward is computed from it.
- probe set: ``n_probe`` fixed validation examples (classes in turn); the student's predicted
  probabilities on them are its low-bandwidth channel to the teacher.
- buckets: ``0`` all data, ``1 + c`` class ``c``, ``1 + n_classes + d`` difficulty level ``d``
  (``d = 0`` easiest). Difficulty ranks the training examples by the pre-trained teacher
  model's probability of the true class and splits them into ``n_difficulty`` equal parts.
  An empty bucket (a class absent from the training split) falls back to all data.
- targets: level ``0`` the one-hot true labels, level ``1 + j`` the teacher model's softmax at
  temperature ``temperatures[j]`` (distillation, Hinton et al. 2015).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F

from commchannels.config import check_memory
from commchannels.data import Dataset, load_dataset
from commchannels.envs.teaching.pretrained import pretrained_teacher


@dataclass(frozen=True)
class TeachingTask:
    """Tensors of one teaching task (see the module docstring)."""

    name: str
    n_classes: int
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    probe_x: torch.Tensor
    teacher_probe_probs: torch.Tensor
    teacher_confidence: torch.Tensor
    targets: torch.Tensor
    bucket_table: torch.Tensor
    bucket_sizes: torch.Tensor
    bucket_names: tuple[str, ...]
    temperatures: tuple[float, ...]

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def n_probe(self) -> int:
        return int(self.probe_x.shape[0])

    @property
    def val_onehot(self) -> torch.Tensor:
        return F.one_hot(self.y_val, self.n_classes).float()

    def bucket_members(self, bucket: int) -> torch.Tensor:
        """Indices into the training set of one bucket."""
        return self.bucket_table[bucket, : int(self.bucket_sizes[bucket])]


def _probe_indices(y: torch.Tensor, n_classes: int, n_probe: int) -> torch.Tensor:
    """``n_probe`` validation indices taking the classes in turn (first unused example each)."""
    pools = [(y == c).nonzero().squeeze(1).tolist() for c in range(n_classes)]
    chosen: list[int] = []
    while len(chosen) < min(n_probe, len(y)):
        for pool in pools:
            if pool and len(chosen) < n_probe:
                chosen.append(pool.pop(0))
    return torch.tensor(chosen, dtype=torch.long)


def _buckets(y: torch.Tensor, confidence: torch.Tensor, n_classes: int, n_difficulty: int):
    n = len(y)
    everything = torch.arange(n)
    members = [everything] + [(y == c).nonzero().squeeze(1) for c in range(n_classes)]
    ranked = torch.argsort(-confidence, stable=True)
    members += [ranked[d * n // n_difficulty : (d + 1) * n // n_difficulty] for d in range(n_difficulty)]
    members = [m if len(m) else everything for m in members]
    table = torch.zeros(len(members), n, dtype=torch.long)
    for row, m in enumerate(members):
        table[row, : len(m)] = m
    sizes = torch.tensor([len(m) for m in members], dtype=torch.long)
    names = ["all"] + [f"class {c}" for c in range(n_classes)]
    names += [f"difficulty {d}/{n_difficulty - 1}" for d in range(n_difficulty)]
    return table, sizes, tuple(names)


def task_bytes(data: Dataset, n_difficulty: int, temperatures: tuple[float, ...],
               teacher_hidden: tuple[int, ...]) -> int:
    """Rough bytes of the task's tensors beyond the data set: the bucket table (int64), the
    targets (float32, one set per temperature and the true labels) and the teacher model
    (parameters, gradients and its logits on the training set)."""
    n, c = len(data.y_train), data.n_classes
    sizes = [data.n_features, *teacher_hidden, c]
    params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    return 8 * n * (1 + c + n_difficulty) + 4 * n * c * (2 + len(temperatures)) + 4 * 3 * params


@lru_cache(maxsize=8)
def build_task(
    dataset: str = "digits",
    data_path: str | None = None,
    max_val: int = 1000,
    n_probe: int = 10,
    n_difficulty: int = 3,
    temperatures: tuple[float, ...] = (2.0,),
    teacher_hidden: tuple[int, ...] = (64,),
    teacher_epochs: int = 30,
    cache_dir: str | os.PathLike | None = None,
) -> TeachingTask:
    """Load the data, get the pre-trained teacher model (cached) and build the task tensors.

    Memoised per argument tuple; the returned tensors must not be modified.
    """
    data = load_dataset(dataset, data_path)
    check_memory(f"the teaching task on {dataset!r}", task_bytes(data, n_difficulty, temperatures, teacher_hidden))
    teacher = pretrained_teacher(data, teacher_hidden, teacher_epochs, seed=0, cache_dir=cache_dir)
    x_val, y_val = data.x_test[:max_val], data.y_test[:max_val]
    probe = _probe_indices(y_val, data.n_classes, n_probe)
    with torch.no_grad():
        train_logits = teacher(data.x_train)
        probe_probs = teacher(x_val[probe]).softmax(-1)
    confidence = train_logits.softmax(-1).gather(1, data.y_train[:, None]).squeeze(1)
    soft = [(train_logits / t).softmax(-1) for t in temperatures]
    targets = torch.stack([F.one_hot(data.y_train, data.n_classes).float(), *soft])
    table, sizes, names = _buckets(data.y_train, confidence, data.n_classes, n_difficulty)
    return TeachingTask(
        name=data.name, n_classes=data.n_classes, x_train=data.x_train, y_train=data.y_train,
        x_val=x_val, y_val=y_val, probe_x=x_val[probe], teacher_probe_probs=probe_probs,
        teacher_confidence=confidence, targets=targets, bucket_table=table, bucket_sizes=sizes,
        bucket_names=names, temperatures=tuple(temperatures),
    )
