"""The exchange track: what a method returns, the evaluation, and the built-in methods.

**Outcome.** A method returns an :class:`ExchangeOutcome`: every worker's trained classifier
(``nn.Module`` mapping ``(B, n_features)`` float inputs to ``(B, n_classes)`` scores, as the
data set loader gives them) and the bytes the workers sent in all, counted by the method.

**Evaluation** (:func:`evaluate`): every worker's model on the whole test split of the task's
data set (the loader of :mod:`commchannels.training.exchange`, so the same preprocessing);
accuracies a method reports are never read. ``test_acc`` is the mean over workers,
``test_acc_min`` the worst worker (what one deployed worker guarantees), ``bytes_sent`` the
outcome's count and ``bytes_per_worker_step`` that count per worker per training step.

**Built-in methods**: :func:`commchannels.training.exchange.train`, simulated (every worker in
this process), for ``task.budget`` steps per worker, with the trainer's defaults (Adam, lr 1e-3:
``benchmarks/results/exchange.json``, the MLP regime, tunes no learning rate), except DiLoCo's
inner AdamW (Douillard et al. 2023, as in ``benchmarks/exchange.py``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from commchannels.benchmark.tasks import Task

# options of each built-in method for commchannels.training.exchange.Config (beside the task's)
METHOD_OPTIONS: dict[str, dict[str, Any]] = {
    "independent": {"method": "independent"},
    "sync_ddp": {"method": "sync-sgd"},
    "powersgd": {"method": "powersgd"},
    "diloco": {"method": "diloco", "optimizer": "adamw"},
    "codistill": {"method": "codistill"},
}


@dataclass
class ExchangeOutcome:
    """What an exchange method trained.

    Attributes:
        models: every worker's classifier (one per worker of the task).
        bytes_sent: bytes the workers sent in all while training.
        budget_used: SGD steps per worker trained (``None``: not reported).
    """

    models: list[nn.Module]
    bytes_sent: int
    budget_used: int | None = None


def task_config(task: Task, **options: Any) -> Any:
    """The task's :class:`~commchannels.training.exchange.Config` (``options`` override ``task.env``)."""
    from commchannels.training.exchange import Config

    return Config(**{**task.env, **options})


# ---------------------------------------------------------------------------- evaluation
@functools.lru_cache(maxsize=2)
def _cached_test_split(cfg: Any) -> tuple[torch.Tensor, torch.Tensor]:
    from commchannels.training.exchange.loop import load_data

    data = load_data(cfg)  # mnist1d is generated procedurally: worth caching
    return data.x_test, data.y_test


def load_test_split(task: Task) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole test split of the task's data set, by the trainer's loader: ``(inputs, labels)``."""
    return _cached_test_split(task_config(task))


def accuracies(models: list[nn.Module], x: torch.Tensor, y: torch.Tensor) -> list[float]:
    """Each model's accuracy on ``(x, y)`` by the trainer's measure, in eval mode (a method's model
    may hold dropout or batch norm; its mode is restored)."""
    from commchannels.training.exchange.loop import accuracy

    out = []
    for model in models:
        was_training = model.training
        model.eval()
        try:
            out.append(accuracy(model, x, y))
        finally:
            model.train(was_training)
    return out


def evaluate(task: Task, outcome: ExchangeOutcome) -> dict[str, Any]:
    """Score ``outcome`` on the task's test split (see the module docstring)."""
    workers = task_config(task).workers
    if not isinstance(outcome, ExchangeOutcome):
        raise ValueError(f"an exchange method returned {type(outcome).__name__}; expected an ExchangeOutcome")
    if len(outcome.models) != workers:
        raise ValueError(f"ExchangeOutcome.models holds {len(outcome.models)} entries; expected one nn.Module "
                         f"per worker ({workers})")
    for i, model in enumerate(outcome.models):
        if not isinstance(model, nn.Module):
            raise ValueError(f"ExchangeOutcome.models[{i}]={model!r} is a {type(model).__name__}; expected an "
                             "nn.Module")
    if isinstance(outcome.bytes_sent, bool) or not isinstance(outcome.bytes_sent, int) or outcome.bytes_sent < 0:
        raise ValueError(f"ExchangeOutcome.bytes_sent={outcome.bytes_sent!r} is not allowed; expected an int >= 0")
    accs = accuracies(outcome.models, *load_test_split(task))
    steps = outcome.budget_used or task.budget
    return {"test_acc": sum(accs) / len(accs), "test_acc_min": min(accs), "bytes_sent": outcome.bytes_sent,
            "bytes_per_worker_step": outcome.bytes_sent / (workers * steps),
            **{f"test_acc_worker_{i}": a for i, a in enumerate(accs)}}


# ---------------------------------------------------------------------------- built-in methods
def train_workers(task: Task, seed: int, name: str) -> ExchangeOutcome:
    """The exchange trainer with the built-in method ``name``'s options, simulated, for
    ``task.budget`` steps per worker, no run folder, one thread; its own evaluation only at the end."""
    from commchannels.training.exchange import train

    steps = task.budget
    cfg = task_config(task, **METHOD_OPTIONS[name], mode="simulated", steps=steps, seed=seed, eval_every=steps,
                      threads=1, run={"progress": False, "tensorboard": False})
    result = train(cfg)
    return ExchangeOutcome(models=list(result.extras["models"]), bytes_sent=int(result.final["bytes_sent"]),
                           budget_used=steps)


def independent(task: Task, seed: int) -> ExchangeOutcome:
    """No communication: each worker trains on its own shard (the lower bound, 0 bytes)."""
    return train_workers(task, seed, "independent")


def sync_ddp(task: Task, seed: int) -> ExchangeOutcome:
    """Synchronous data parallelism: gradients all-reduced every step, as DDP does (what practitioners run)."""
    return train_workers(task, seed, "sync_ddp")


def powersgd(task: Task, seed: int) -> ExchangeOutcome:
    """DDP with torch's PowerSGD hook (rank 1, error feedback; plain all-reduce for 100 steps)."""
    return train_workers(task, seed, "powersgd")


def diloco(task: Task, seed: int) -> ExchangeOutcome:
    """DiLoCo: 10 inner AdamW steps, then an outer Nesterov step on the averaged parameter deltas."""
    return train_workers(task, seed, "diloco")


def codistill(task: Task, seed: int) -> ExchangeOutcome:
    """Codistillation: every 10 steps, 8-bit class probabilities on a shared public batch (Anil et al. 2018)."""
    return train_workers(task, seed, "codistill")
