"""What a practitioner tunes instead of a teacher: learning-rate schedules and a bandit curriculum.

Every policy here follows the teacher-policy protocol of
:mod:`commchannels.training.teaching_baselines`: ``policy(core) -> (directives, lr)``, where the
directives are ``(bucket, plain lr level, true labels)`` and ``lr`` is a ``(B,)`` tensor of
absolute learning rates that overrides the level. Stateful policies (reduce-on-plateau, the
bandit) also have ``reset(core)``, called after each ``core.reset``. Time is ``core.t``, the
directives each environment has applied, so a schedule spans the episode's ``horizon``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import torch

from commchannels.envs.teaching import TeachingCore
from commchannels.envs.teaching.families import StudentFamily
from commchannels.seeding import torch_generator

Directed = tuple[torch.Tensor, torch.Tensor]  # (directives (B, 3), absolute learning rates (B,))
LRPolicy = Callable[[TeachingCore], Directed]


def directives(core: TeachingCore, bucket: torch.Tensor | int = 0) -> torch.Tensor:
    """``(B, 3)`` directives: ``bucket``, the plain lr level (overridden by an absolute lr), true labels."""
    bucket = torch.as_tensor(bucket, dtype=torch.long).expand(core.n_envs)
    return torch.stack([bucket, torch.full_like(bucket, core.settings.plain_lr_level), torch.zeros_like(bucket)], 1)


def constant_lr(lr: float) -> LRPolicy:
    """All data, true labels, the absolute learning rate ``lr`` throughout."""
    def policy(core: TeachingCore) -> Directed:
        return directives(core), torch.full((core.n_envs,), float(lr))
    return policy


# ---------------------------------------------------------------------------- per family
def nearest_family(family: StudentFamily, known: Sequence[StudentFamily]) -> StudentFamily:
    """The family of ``known`` most like ``family`` (itself when it is known by name).

    Most alike: the same optimiser first (it moves the best learning rate the most: Adam's and
    SGD's differ a hundredfold), then the most equal values of :meth:`StudentFamily.attributes`
    (optimiser, activation, depth, width, initialisation scale, batch size, label noise,
    imbalance), then agreement on the earlier of those attributes, then the earliest in ``known``.
    """
    if not known:
        raise ValueError("known=() is invalid; expected at least one family")
    for candidate in known:
        if candidate.name == family.name:
            return candidate
    mine = family.attributes()

    def likeness(other: StudentFamily) -> tuple[int, int, tuple[bool, ...]]:
        alike = tuple(mine[key] == value for key, value in other.attributes().items())
        return int(mine["optimiser"] == other.student.optimiser), sum(alike), alike
    return max(known, key=likeness)  # max keeps the first of equals


class PerFamilyLR:
    """All data, true labels, each student at the learning rate tuned for its family (``lrs``, by name,
    for the families ``known``); a family without one takes its :func:`nearest_family`'s."""

    def __init__(self, lrs: Mapping[str, float], known: Sequence[StudentFamily]) -> None:
        missing = [f.name for f in known if f.name not in lrs]
        if missing:
            raise ValueError(f"lrs has no learning rate for the families {missing}; expected one per known family")
        self.lrs, self.known = dict(lrs), tuple(known)
        self._tables: dict[tuple[StudentFamily, ...], torch.Tensor] = {}

    def rates(self, families: Sequence[StudentFamily]) -> torch.Tensor:
        """The learning rate of each of ``families`` (a core's split)."""
        key = tuple(families)
        if key not in self._tables:
            self._tables[key] = torch.tensor([self.lrs[nearest_family(f, self.known).name] for f in key])
        return self._tables[key]

    def __call__(self, core: TeachingCore) -> Directed:
        return directives(core), self.rates(core.families)[core.family]


# ---------------------------------------------------------------------------- schedules
def cosine_lr(t: torch.Tensor, horizon: int, peak: float) -> torch.Tensor:
    """Cosine annealing from ``peak`` at ``t = 0`` to 0 at ``t = horizon`` (Loshchilov & Hutter 2017)."""
    return peak * 0.5 * (1 + torch.cos(math.pi * t.double() / horizon)).float()


def one_cycle_lr(t: torch.Tensor, total: int, peak: float, pct_start: float = 0.3, div_factor: float = 25.0,
                 final_div_factor: float = 1e4) -> torch.Tensor:
    """The learning rate at step ``t`` of ``torch.optim.lr_scheduler.OneCycleLR`` (two phases, cosine
    annealing, ``total_steps=total``): from ``peak / div_factor`` up to ``peak`` at step
    ``pct_start * total - 1``, then down to ``peak / div_factor / final_div_factor`` at ``total - 1``."""
    initial = peak / div_factor
    final = initial / final_div_factor
    up_end, down_end = pct_start * total - 1, total - 1
    t = t.double()
    up = t <= up_end
    pct = torch.where(up, t / up_end if up_end > 0 else torch.ones_like(t), (t - up_end) / (down_end - up_end))
    start = torch.where(up, torch.full_like(t, initial), torch.full_like(t, peak))
    end = torch.where(up, torch.full_like(t, peak), torch.full_like(t, final))
    return (end + (start - end) / 2 * (torch.cos(math.pi * pct) + 1)).float()


def cosine(peak: float) -> LRPolicy:
    """All data, true labels, :func:`cosine_lr` over the episode's horizon."""
    def policy(core: TeachingCore) -> Directed:
        return directives(core), cosine_lr(core.t, core.settings.horizon, peak)
    return policy


def one_cycle(peak: float) -> LRPolicy:
    """All data, true labels, :func:`one_cycle_lr` over the episode's horizon."""
    def policy(core: TeachingCore) -> Directed:
        return directives(core), one_cycle_lr(core.t, core.settings.horizon, peak)
    return policy


class _Stateful:
    """Tracks which environments applied a directive since the last call (frozen ones do not)."""

    def reset(self, core: TeachingCore) -> None:
        self.seen = core.t.clone()

    def stepped(self, core: TeachingCore) -> torch.Tensor:
        if not hasattr(self, "seen"):
            raise ValueError(f"{type(self).__name__}.reset(core) must be called after each core.reset()")
        stepped = core.t > self.seen
        self.seen = core.t.clone()
        return stepped


class ReduceOnPlateau(_Stateful):
    """All data, true labels; the learning rate starts at ``lr`` and is multiplied by ``factor`` when
    the validation loss ``core.val_loss`` has not improved (relatively, by ``threshold``) for more than
    ``patience`` directives, as ``torch.optim.lr_scheduler.ReduceLROnPlateau`` (mode min, relative
    threshold, no cooldown) does per epoch. The state is per environment; the loss after ``reset``
    is the first best."""

    def __init__(self, lr: float, factor: float = 0.5, patience: int = 2, threshold: float = 1e-4) -> None:
        if not 0 < factor < 1:
            raise ValueError(f"factor={factor} is out of range; expected 0 < factor < 1")
        self.lr, self.factor, self.patience, self.threshold = float(lr), factor, int(patience), threshold

    def reset(self, core: TeachingCore) -> None:
        super().reset(core)
        self.rates = torch.full((core.n_envs,), self.lr)
        self.best = core.val_loss.clone()
        self.bad = torch.zeros(core.n_envs, dtype=torch.long)

    def __call__(self, core: TeachingCore) -> Directed:
        stepped = self.stepped(core)
        better = stepped & (core.val_loss < self.best * (1 - self.threshold))
        self.best = torch.where(better, core.val_loss, self.best)
        self.bad = torch.where(better, 0, self.bad + stepped.long())
        cut = self.bad > self.patience
        self.rates = torch.where(cut, self.rates * self.factor, self.rates)
        self.bad = torch.where(cut, 0, self.bad)
        return directives(core), self.rates.clone()


def bucket_scores(core: TeachingCore) -> torch.Tensor:
    """``(B, buckets)`` validation score of each data bucket: the class's accuracy for a class bucket,
    the overall accuracy for all data and for the difficulty buckets (validation examples have no
    difficulty)."""
    n_buckets, n_classes = core.action_nvec[0], core.per_class.shape[1]
    overall = core.accuracy[:, None]
    return torch.cat([overall, core.per_class, overall.expand(-1, n_buckets - 1 - n_classes)], dim=1)


class BanditCurriculum(_Stateful):
    """Teacher-Student Curriculum Learning's online algorithm (Matiisen et al. 2017, Algorithm 1) over
    the data buckets, per environment: the value of bucket ``a`` follows
    ``Q(a) <- alpha r + (1 - alpha) Q(a)``, with ``r`` the change of ``a``'s validation score
    (:func:`bucket_scores`) since ``a`` was last trained on (its learning progress, or forgetting);
    buckets are chosen epsilon-greedily on ``|Q|``, ties at random. Learning rate ``lr``, true labels.
    Random draws come from the policy's generator, seeded with ``seed`` once (episodes continue it)."""

    def __init__(self, lr: float, seed: int = 0, alpha: float = 0.1, epsilon: float = 0.1) -> None:
        if not 0 < alpha <= 1 or not 0 <= epsilon <= 1:
            raise ValueError(f"alpha={alpha}, epsilon={epsilon} are out of range; expected 0 < alpha <= 1, "
                             "0 <= epsilon <= 1")
        self.lr, self.alpha, self.epsilon = float(lr), alpha, epsilon
        self.generator = torch_generator(seed)

    def reset(self, core: TeachingCore) -> None:
        super().reset(core)
        self.last = bucket_scores(core)  # score of each bucket when it was last trained on
        self.q = torch.zeros_like(self.last)
        self.chosen: torch.Tensor | None = None

    def __call__(self, core: TeachingCore) -> Directed:
        stepped, scores = self.stepped(core), bucket_scores(core)
        if self.chosen is not None:
            a = self.chosen[:, None]
            progress = scores.gather(1, a) - self.last.gather(1, a)
            updated = self.alpha * progress + (1 - self.alpha) * self.q.gather(1, a)
            self.q.scatter_(1, a, torch.where(stepped[:, None], updated, self.q.gather(1, a)))
            self.last.scatter_(1, a, torch.where(stepped[:, None], scores.gather(1, a), self.last.gather(1, a)))
        B, K = self.q.shape
        value = self.q.abs()
        ties = torch.rand(B, K, generator=self.generator) * (value == value.amax(1, keepdim=True))
        greedy = ties.argmax(1)
        explore = torch.rand(B, generator=self.generator) < self.epsilon
        self.chosen = torch.where(explore, torch.randint(K, (B,), generator=self.generator), greedy)
        return directives(core, self.chosen), torch.full((B,), self.lr)
