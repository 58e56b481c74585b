"""The teaching track: evaluation on held-out students, and the built-in methods.

**Policy interface.** A method returns a teacher policy of
:mod:`commchannels.training.teaching_baselines`: ``policy(core) -> directives`` (or
``(directives, lr)``), called once per directive step of a batched
:class:`~commchannels.envs.teaching.TeachingCore`, with an optional ``reset(core)`` called at each
episode's start. It trains on at most ``task.budget`` student runs (episodes) of the preset's
*training* families, from training seeds (:func:`~commchannels.training.teaching_baselines.training_seed`).

**Evaluation** (:func:`evaluate`): ``task.eval_seeds`` seeds of ``task.eval_games`` fresh students
each, drawn from the preset's *held-out* families (never seen in training or tuning) with the
evaluation seeds ``EVAL_SEED_BASE + i`` (no training seed is one of them), the same students for
every method. Metrics: ``updates_to_target`` (mean SGD updates until the validation accuracy
reaches the target, censored at ``horizon * updates_per_step``) with ``updates_to_target_ci95``
(95% Student-t half-width over the seeds' means; ``None`` for one seed), ``reached`` and
``diverged`` (fractions of students), ``auc`` (the area under each student's validation-accuracy
curve over the horizon's directives, its last value carried once the student is done, divided by
the horizon: in [0, 1]; mean over students) and ``final_accuracy``: those of
:func:`~commchannels.training.teaching_baselines.evaluate`.

**Built-in methods**: ``random_directives`` and ``plain_sgd`` (untrained), ``tuned_lr``,
``tuned_lr_per_family`` and ``tuned_cosine`` (tuned by
:mod:`~commchannels.training.teaching_baselines` on the whole budget), and the teachers of
:mod:`commchannels.training.teacher` trained by REINFORCE on the budget: ``blind_teacher`` (sees
only the episode's progress) and ``sighted_teacher`` (sees the student's statistics).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from commchannels.benchmark.tasks import Task
from commchannels.envs.teaching import TeachingSettings
from commchannels.training import teaching_baselines as tb
from commchannels.training import teaching_schedules as ts

TEACHER_ENVS = 64  # students per teacher iteration: iterations = budget // TEACHER_ENVS
TEACHER_LR = 0.01  # the teacher's Adam rate of benchmarks/teaching.py (a short budget needs the larger rate)


def task_settings(task: Task, split: str = "train") -> TeachingSettings:
    """The task's teaching rules on the ``split`` families (``train`` or ``held-out``)."""
    return tb.with_split(TeachingSettings(**task.env), split)


# ---------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate(task: Task, policy: tb.Policy) -> dict[str, Any]:
    """Score ``policy`` on the task's held-out students (see the module docstring):
    :func:`~commchannels.training.teaching_baselines.evaluate` under the benchmark's names."""
    if not 1 <= task.eval_seeds <= tb.MAX_EVAL_SEEDS:
        raise ValueError(f"task.eval_seeds={task.eval_seeds} is out of range; expected 1 to {tb.MAX_EVAL_SEEDS}")
    found = tb.evaluate(task_settings(task, "held-out"), policy, task.eval_seeds, task.eval_games)
    half = found["steps_ci95"]  # nan for one seed: results are strict JSON
    return {"updates_to_target": found["student_steps_mean"],
            "updates_to_target_ci95": half if math.isfinite(half) else None,
            **{key: found[key] for key in ("reached", "diverged", "auc", "final_accuracy")}}


# ---------------------------------------------------------------------------- built-in methods
def _spent(policy: Any, student_runs: int) -> Any:
    policy.budget_used = student_runs
    return policy


def random_directives(task: Task, seed: int) -> tb.Policy:
    """Uniformly random directives (untrained: the lower reference)."""
    return _spent(tb.random_directives(seed), 0)


def plain_sgd(task: Task, seed: int) -> tb.Policy:
    """All data, learning-rate scale 1, true labels (untuned)."""
    return _spent(tb.plain_sgd(), 0)


def tuned_lr(task: Task, seed: int) -> tb.Policy:
    """The best constant learning rate of the grid, tuned on the whole budget."""
    train = task_settings(task)
    lr, _ = tb.constant_lrs(train, task.budget, seed)
    return _spent(ts.constant_lr(lr), tb.tuning_cost(task.budget, len(tb.lr_grid(train))))


def tuned_lr_per_family(task: Task, seed: int) -> tb.Policy:
    """The best constant learning rate of each training family (the budget spread evenly over
    them); a held-out student takes its nearest training family's."""
    train = task_settings(task)
    _, lrs = tb.constant_lrs(train, task.budget, seed)
    return _spent(ts.PerFamilyLR(lrs, train.families), tb.tuning_cost(task.budget, len(tb.lr_grid(train))))


def tuned_cosine(task: Task, seed: int) -> tb.Policy:
    """Cosine annealing over the horizon, its peak tuned on the whole budget (the grid reaches two
    half-steps above the largest level, as the project's baselines do)."""
    train = task_settings(task)
    grid = tb.lr_grid(train, above=2)
    peak, _ = tb.tune(train, tb.values(ts.cosine, grid), task.budget, seed)
    return _spent(ts.cosine(float(peak)), tb.tuning_cost(task.budget, len(grid)))


def train_teacher(task: Task, seed: int, observe: str) -> tb.Policy:
    """The teacher of :mod:`commchannels.training.teacher` (its defaults, Adam rate
    :data:`TEACHER_LR`), ``budget // TEACHER_ENVS`` iterations of :data:`TEACHER_ENVS` students,
    as its greedy policy. Its own final report is cut to one student of the training families
    (the task evaluates; making a method never meets a held-out family)."""
    from commchannels.run_folder import RunOptions
    from commchannels.training.teacher import Config, GreedyTeacher, train

    n_envs = min(TEACHER_ENVS, task.budget)
    if n_envs < 1:
        raise ValueError(f"task.budget={task.budget} is too small for a teacher; expected at least 1 student run")
    iterations = task.budget // n_envs
    cfg = Config(env=task_settings(task), n_envs=n_envs, iterations=iterations, lr=TEACHER_LR, observe=observe,
                 eval_split="train", eval_seeds=1, eval_students=1, threads=0, seed=seed,
                 run=RunOptions(progress=False, tensorboard=False))
    extras = train(cfg).extras
    return _spent(GreedyTeacher(extras["teacher"], observe, extras["speaker"]), n_envs * iterations)


def blind_teacher(task: Task, seed: int) -> tb.Policy:
    """A GRU teacher that sees only the episode's progress (the channel to the student cut)."""
    return train_teacher(task, seed, "progress")


def sighted_teacher(task: Task, seed: int) -> tb.Policy:
    """A GRU teacher that sees the student's statistics."""
    return train_teacher(task, seed, "full")
