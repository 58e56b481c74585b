"""Hand-made teachers and the common evaluation of every teacher on held-out students.

A *teacher policy* maps a batched core to directives: ``policy(core) -> (B, 3)`` long tensor.
Baselines: plain SGD (all data, learning-rate scale 1, true labels), random directives, an
easy-to-hard curriculum by the teacher model's confidence, always-distil (soft labels only) and
the best fixed learning-rate scale (chosen on training seeds, never on the evaluation seeds);
optionally, as a stronger reference, the best fixed (learning rate, targets) pair.
Every teacher is scored by the number of SGD updates a fresh student needs to reach the target
validation accuracy (censored at ``horizon * updates_per_step`` when it never does).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from commchannels.envs.teaching import TeachingCore, TeachingSettings
from commchannels.seeding import torch_generator

Policy = Callable[[TeachingCore], torch.Tensor]
EVAL_SEED_BASE = 1_000_000  # evaluation students come from seeds no training run uses
MAX_EVAL_SEEDS = 100_000  # evaluation seeds are EVAL_SEED_BASE + i, i < MAX_EVAL_SEEDS
MAX_TRAINING_BATCHES = 10_000_000  # batches of training students per run seed (< 2**24)
TUNED = "best fixed directive"


def training_seed(seed: int, index: int = 0) -> int:
    """The seed of the ``index``-th batch of training students of a run seeded ``seed``.

    ``seed * 1000 + index`` for the first run seeds and batches (``seed, index < 1000``), above
    that ``2**40 + seed * 2**24 + index``: no two (seed, index) pairs share students, and none
    is a held-out evaluation seed (``EVAL_SEED_BASE + i``), which ``seed * 1000 + index``
    alone reached from ``seed = 1000``.
    """
    if not 0 <= index < MAX_TRAINING_BATCHES:
        raise ValueError(f"index={index} is out of range; expected 0 <= index < {MAX_TRAINING_BATCHES}")
    if 0 <= seed < 1000 and index < 1000:
        return seed * 1000 + index
    return 2**40 + seed * 2**24 + index


def fixed(bucket: int = 0, lr_level: int | None = None, target: int = 0) -> Policy:
    """The same directive every step (``lr_level=None``: the scale closest to 1)."""
    def policy(core: TeachingCore) -> torch.Tensor:
        level = core.settings.plain_lr_level if lr_level is None else lr_level
        return torch.tensor([bucket, level, target]).expand(core.n_envs, 3)
    return policy


def plain_sgd() -> Policy:
    """Uniform batches from all data, learning-rate scale 1, true labels."""
    return fixed()


def always_distil(temperature_level: int = 1) -> Policy:
    """Like plain SGD but the targets are always the teacher model's softened predictions."""
    return fixed(target=temperature_level)


def random_directives(seed: int = 0) -> Policy:
    """Uniformly random directives from the policy's own generator."""
    generator = torch_generator(seed)

    def policy(core: TeachingCore) -> torch.Tensor:
        high = torch.tensor(core.action_nvec, dtype=torch.float32)
        return (torch.rand(core.n_envs, 3, generator=generator) * high).long()
    return policy


def curriculum() -> Policy:
    """Easy to hard ("baby steps", Bengio et al. 2009): the difficulty buckets in turn, easiest
    first, each for ``horizon / (2 * n_difficulty)`` directives, then all data (scale 1, true labels)."""
    def policy(core: TeachingCore) -> torch.Tensor:
        s = core.settings
        phase = max(1, s.horizon // (2 * s.n_difficulty))
        level = (core.t // phase).clamp_max(s.n_difficulty)
        first_difficulty = 1 + core.task.n_classes
        bucket = torch.where(level < s.n_difficulty, first_difficulty + level, torch.zeros_like(level))
        return torch.stack([bucket, torch.full_like(bucket, s.plain_lr_level), torch.zeros_like(bucket)], 1)
    return policy


def run_episode(core: TeachingCore, policy: Policy, seed: int) -> dict[str, torch.Tensor]:
    """Run one synchronous episode of all B environments; returns per-student results."""
    core.reset(seed)
    total = torch.zeros(core.n_envs)
    while not bool(core.done.all()):
        if core.settings.student_speaks:
            raise ValueError("run_episode drives passive students only (student_speaks=False)")
        total += core.step(policy(core))["reward"]
    cap = core.settings.horizon * core.settings.updates_per_step
    steps = torch.where(core.reached, core.t * core.settings.updates_per_step, torch.full((), cap))
    return {"steps": steps.float(), "reached": core.reached.float(), "diverged": core.diverged.float(),
            "accuracy": core.accuracy.clone(), "return": total}


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of the Student-t confidence interval."""
    from scipy import stats

    x = torch.as_tensor(values, dtype=torch.float64)
    if len(x) < 2:
        return float(x.mean()), math.nan
    half = stats.t.ppf(0.5 + confidence / 2, len(x) - 1) * float(x.std()) / math.sqrt(len(x))
    return float(x.mean()), float(half)


def evaluate(settings: TeachingSettings, policy: Policy, n_seeds: int = 10, students_per_seed: int = 4,
             seed_base: int = EVAL_SEED_BASE) -> dict[str, Any]:
    """Score ``policy`` on ``n_seeds`` held-out seeds of ``students_per_seed`` fresh students each.

    The mean and 95% interval are over seeds (each seed's mean steps), the conservative choice.
    """
    core = TeachingCore(settings, n_envs=students_per_seed, seed=seed_base)
    runs = [run_episode(core, policy, seed_base + i) for i in range(n_seeds)]
    per_seed = [float(r["steps"].mean()) for r in runs]
    mean, half = mean_ci(per_seed)
    return {"steps_mean": mean, "steps_ci95": half, "per_seed_steps": per_seed,
            "reached": float(torch.cat([r["reached"] for r in runs]).mean()),
            "diverged": float(torch.cat([r["diverged"] for r in runs]).mean()),
            "final_accuracy": float(torch.cat([r["accuracy"] for r in runs]).mean())}


def best_fixed_lr(settings: TeachingSettings, n_envs: int = 16, seed: int = 0) -> int:
    """The learning-rate level (all data, true labels) with the fewest steps on the training
    students of run seed ``seed`` (:func:`training_seed`)."""
    seed = training_seed(seed)
    core = TeachingCore(settings, n_envs=n_envs, seed=seed)
    scores = [float(run_episode(core, fixed(lr_level=level), seed)["steps"].mean())
              for level in range(len(settings.lr_scales))]
    return min(range(len(scores)), key=scores.__getitem__)


def best_fixed_directive(settings: TeachingSettings, n_envs: int = 16, seed: int = 0) -> tuple[int, int]:
    """The (learning-rate level, target level) pair, all data, with the fewest steps on the
    training students of run seed ``seed``: a stronger reference than the baselines above, since
    it also tunes distillation."""
    seed = training_seed(seed)
    core = TeachingCore(settings, n_envs=n_envs, seed=seed)
    pairs = [(lr, target) for lr in range(len(settings.lr_scales)) for target in range(core.action_nvec[2])]
    scores = [float(run_episode(core, fixed(lr_level=lr, target=t), seed)["steps"].mean()) for lr, t in pairs]
    return pairs[min(range(len(pairs)), key=scores.__getitem__)]


def baselines(settings: TeachingSettings, seed: int = 0, tuned_directive: bool = False) -> dict[str, Policy]:
    """Every baseline by name (``best fixed lr`` is tuned here on training seeds; with
    ``tuned_directive`` also the best fixed (learning rate, targets) pair)."""
    level = best_fixed_lr(settings, seed=seed)
    found = {"plain SGD": plain_sgd(), "random": random_directives(seed), "curriculum": curriculum(),
             "always distil": always_distil(),
             f"best fixed lr (x{settings.lr_scales[level]})": fixed(lr_level=level)}
    if tuned_directive:
        lr, target = best_fixed_directive(settings, seed=seed)
        targets = "labels" if target == 0 else f"distil T={settings.temperatures[target - 1]}"
        found[f"{TUNED} (x{settings.lr_scales[lr]}, {targets})"] = fixed(lr_level=lr, target=target)
    return found
