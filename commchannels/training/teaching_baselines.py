"""Hand-made and tuned teachers, and the common evaluation of every teacher on held-out students.

**The teacher-policy protocol.** A policy is called once per directive step:
``policy(core)`` returns ``(B, 3)`` long directives ``(bucket, lr level, target level)``, or a
tuple ``(directives, lr)`` with ``lr`` a ``(B,)`` tensor of absolute learning rates overriding the
level (passed on as ``core.step(directives, lr=lr)``). A stateful policy also has
``reset(core)``, which :func:`run_episode` calls after each ``core.reset``.

**Baselines.** Untuned: plain SGD (all data, learning-rate scale 1, true labels), random
directives, an easy-to-hard curriculum and always-distil. Tuned, each on the same ``budget`` of
training students (:func:`tune`; pass the teacher's ``n_envs * iterations``), always on training
seeds (:func:`training_seed`) and on the preset's training families: the best constant learning
rate, the best constant learning rate per family (both from one set of runs; a held-out family
takes its nearest training family's,
:func:`~commchannels.training.teaching_schedules.nearest_family`), cosine and one-cycle
schedules with a tuned peak, reduce-on-plateau with a tuned start, the best fixed
(lr level, targets) directive, and a bandit curriculum (Matiisen et al. 2017) at the tuned
constant learning rate. One reference breaks the rule on purpose and says so in its name: the
per-family learning rate tuned on the held-out families themselves (:data:`ORACLE`), still on
training seeds. The schedules and the bandit live in :mod:`commchannels.training.teaching_schedules`.

Every teacher is scored by the number of SGD updates a fresh student needs to reach the target
validation accuracy (censored at ``horizon * updates_per_step`` when it never does).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import torch

from commchannels.envs.teaching import TeachingCore, TeachingSettings
from commchannels.seeding import torch_generator
from commchannels.training import teaching_schedules as ts

Policy = Callable[[TeachingCore], torch.Tensor | tuple[torch.Tensor, torch.Tensor]]
EVAL_SEED_BASE = 1_000_000  # evaluation students come from seeds no training run uses
MAX_EVAL_SEEDS = 100_000  # evaluation seeds are EVAL_SEED_BASE + i, i < MAX_EVAL_SEEDS
MAX_TRAINING_BATCHES = 10_000_000  # batches of training students per run seed (< 2**24)
TUNED = "best fixed directive"
ORACLE = "oracle"  # in the name of the one baseline tuned on held-out families
DEFAULT_BUDGET = 256  # student runs per tuned baseline; pass the teacher's n_envs * iterations instead
CHUNK = 256  # tuning students stepped together in one core


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


# ---------------------------------------------------------------------------- hand-made teachers
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


# ---------------------------------------------------------------------------- evaluation
def run_episode(core: TeachingCore, policy: Policy, seed: int, family: torch.Tensor | None = None,
                on_step: Callable[[TeachingCore], None] | None = None) -> dict[str, torch.Tensor]:
    """Run one synchronous episode of all B environments (``family``: force each one's student
    family, indices into ``core.families``; ``on_step``: called with the core after each directive
    step, e.g. to record learning curves); returns per-student results."""
    if core.settings.student_speaks and not getattr(policy, "sends_reports", False):
        raise ValueError("run_episode drives speaking students (student_speaks=True) only with a policy that also "
                         "sends their reports (sends_reports=True, e.g. a trained GreedyTeacher with a speaker); "
                         "expected student_speaks=False for this policy")
    core.reset(seed, family=family)
    if hasattr(policy, "reset"):
        policy.reset(core)
    total = torch.zeros(core.n_envs)
    while not bool(core.done.all()):
        out = policy(core)
        directives, lr = out if isinstance(out, tuple) else (out, None)
        total += core.step(directives, lr=lr)["reward"]
        if on_step is not None:
            on_step(core)
    cap = core.settings.horizon * core.settings.updates_per_step
    steps = torch.where(core.reached, core.t * core.settings.updates_per_step, torch.full((), cap))
    return {"steps": steps.float(), "reached": core.reached.float(), "diverged": core.diverged.float(),
            "accuracy": core.accuracy.clone(), "return": total, "family": core.family.clone()}


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of the Student-t confidence interval."""
    from scipy import stats

    x = torch.as_tensor(values, dtype=torch.float64)
    if len(x) < 2:
        return float(x.mean()), math.nan
    half = stats.t.ppf(0.5 + confidence / 2, len(x) - 1) * float(x.std()) / math.sqrt(len(x))
    return float(x.mean()), float(half)


class LearningCurve:
    """``on_step`` of :func:`run_episode`: each student's validation accuracy after each of its
    directives, the last value carried once it is done."""

    def __init__(self, n_envs: int) -> None:
        self.t = torch.zeros(n_envs, dtype=torch.long)  # directives applied: every episode starts at 0
        self.last = torch.zeros(n_envs)
        self.values: list[torch.Tensor] = []

    def __call__(self, core: TeachingCore) -> None:
        stepped = core.t > self.t
        self.t = core.t.clone()
        self.last = torch.where(stepped, core.accuracy, self.last)
        self.values.append(self.last)

    def area(self, horizon: int) -> torch.Tensor:
        """``(B,)`` mean accuracy over ``horizon`` directives (the last value carried to the end)."""
        if len(self.values) > horizon:
            raise ValueError(f"the curve has {len(self.values)} directive steps; expected at most horizon={horizon}")
        recorded = torch.stack(self.values, 1).sum(1) if self.values else torch.zeros_like(self.last)
        return (recorded + (horizon - len(self.values)) * self.last) / horizon


def evaluate(settings: TeachingSettings, policy: Policy, n_seeds: int = 10, students_per_seed: int = 4,
             seed_base: int = EVAL_SEED_BASE) -> dict[str, Any]:
    """Score ``policy`` on ``n_seeds`` held-out seeds of ``students_per_seed`` fresh students each
    (drawn from the families of ``settings.split``).

    The mean and 95% interval are over seeds (each seed's mean steps), the conservative choice
    (the interval is ``nan`` for one seed); ``student_steps_mean`` is the mean over all students,
    in float32 (equal to ``steps_mean`` up to rounding, since every seed has as many students);
    ``per_family_steps`` is the mean over the students of each family that was drawn; ``auc`` the
    mean over students of the area under their :class:`LearningCurve` over the horizon, in [0, 1].
    """
    core = TeachingCore(settings, n_envs=students_per_seed, seed=seed_base)
    runs, areas = [], []
    for i in range(n_seeds):
        curve = LearningCurve(core.n_envs)
        runs.append(run_episode(core, policy, seed_base + i, on_step=curve))
        areas.append(curve.area(settings.horizon))
    per_seed = [float(r["steps"].mean()) for r in runs]
    mean, half = mean_ci(per_seed)
    steps, family = torch.cat([r["steps"] for r in runs]), torch.cat([r["family"] for r in runs])
    per_family = {f.name: float(steps[family == i].mean()) for i, f in enumerate(core.families)
                  if bool((family == i).any())}
    return {"steps_mean": mean, "steps_ci95": half, "per_seed_steps": per_seed, "per_family_steps": per_family,
            "student_steps_mean": float(steps.mean()),
            "reached": float(torch.cat([r["reached"] for r in runs]).mean()),
            "diverged": float(torch.cat([r["diverged"] for r in runs]).mean()),
            "auc": float(torch.cat(areas).mean()),
            "final_accuracy": float(torch.cat([r["accuracy"] for r in runs]).mean())}


# ---------------------------------------------------------------------------- tuning
Factories = Mapping[str, Callable[[], Policy]]  # candidate name -> a fresh policy


def tuning_share(budget: int, n_candidates: int) -> int:
    """Training students each of ``n_candidates`` meets in :func:`tuning_runs`: an equal whole
    share of ``budget``."""
    return budget // n_candidates


def tuning_cost(budget: int, n_candidates: int) -> int:
    """Training students :func:`tuning_runs` spends in all on ``n_candidates`` and ``budget``."""
    return tuning_share(budget, n_candidates) * n_candidates


def tuning_runs(settings: TeachingSettings, candidates: Factories, budget: int, seed: int = 0,
                spread: bool = False) -> dict[str, dict[str, torch.Tensor]]:
    """Every candidate's episodes on its share of ``budget`` training students.

    The budget is split evenly over the candidates, which all meet the same students: batches of
    up to :data:`CHUNK`, the ``i``-th from seed ``training_seed(seed, i)``, of the families of
    ``settings.split`` (drawn, or with ``spread`` forced in turn, so each family gets an equal share).

    Returns:
        ``{name: {"steps", "accuracy", "family"}}``, ``(students,)`` tensors.
    """
    n_families = len(settings.families)
    need = len(candidates) * (n_families if spread else 1)
    if not candidates or budget < need:
        raise ValueError(f"budget={budget} is too small for {len(candidates)} candidates"
                         + (f" on each of {n_families} families" if spread else "")
                         + f"; expected at least {need} students")
    per = tuning_share(budget, len(candidates))
    sizes = [CHUNK] * (per // CHUNK) + ([per % CHUNK] if per % CHUNK else [])
    cores = {n: TeachingCore(settings, n_envs=n, seed=training_seed(seed)) for n in set(sizes)}
    starts = [0, *itertools.accumulate(sizes)]
    runs = {}
    for name, make in candidates.items():
        policy = make()
        episodes = [run_episode(cores[n], policy, training_seed(seed, i),
                                torch.arange(start, start + n) % n_families if spread else None)
                    for i, (n, start) in enumerate(zip(sizes, starts))]
        runs[name] = {key: torch.cat([e[key] for e in episodes]) for key in ("steps", "accuracy", "family")}
    return runs


def best(runs: Mapping[str, Mapping[str, torch.Tensor]], family: int | None = None,
         ) -> tuple[str, dict[str, tuple[float, float]]]:
    """The candidate with the fewest mean SGD updates to target (over the students of ``family``
    only, if given), ties broken by the higher mean final accuracy.

    Returns:
        The best name and ``{name: (mean steps, mean final accuracy)}``.
    """
    scores = {}
    for name, run in runs.items():
        keep = torch.ones_like(run["family"], dtype=torch.bool) if family is None else run["family"] == family
        scores[name] = (float(run["steps"][keep].mean()), float(run["accuracy"][keep].mean()))
    return min(scores, key=lambda n: (scores[n][0], -scores[n][1])), scores


def tune(settings: TeachingSettings, candidates: Factories, budget: int,
         seed: int = 0) -> tuple[str, dict[str, tuple[float, float]]]:
    """The best of ``candidates`` on ``budget`` training students in all (:func:`tuning_runs`,
    :func:`best`): the best name and every candidate's (mean steps, mean final accuracy)."""
    return best(tuning_runs(settings, candidates, budget, seed))


def values(make: Callable[[float], Policy], grid: Sequence[float]) -> dict[str, Callable[[], Policy]]:
    """Candidates ``make(v)`` for ``v`` in ``grid``, named ``repr(v)`` (``float(name)`` gives ``v`` back)."""
    return {repr(float(v)): partial(make, float(v)) for v in grid}


def lr_grid(settings: TeachingSettings, above: int = 0) -> list[float]:
    """Absolute learning rates to tune over: the levels' (``base_lr * lr_scales``) and the geometric
    midpoints between neighbours, plus ``above`` more half-steps past the largest (a schedule's peak
    lies above the best constant rate)."""
    levels = sorted({settings.base_lr * s for s in settings.lr_scales})
    grid = [levels[0]]
    for low, high in zip(levels[:-1], levels[1:]):
        grid += [math.sqrt(low * high), high]
    ratio = math.sqrt(levels[-1] / levels[-2]) if len(levels) > 1 else math.sqrt(2.0)
    return grid + [levels[-1] * ratio**k for k in range(1, above + 1)]


def with_split(settings: TeachingSettings, split: str) -> TeachingSettings:
    """``settings`` drawing its students from the ``split`` families."""
    return dataclasses.replace(settings, split=split)


def constant_lrs(settings: TeachingSettings, budget: int, seed: int = 0) -> tuple[float, dict[str, float]]:
    """The best constant learning rate of :func:`lr_grid` over the families of ``settings.split``,
    and per family (name -> lr), both from one set of runs: ``budget`` students spread evenly over
    the rates and, when there are several, the families."""
    families = settings.families
    runs = tuning_runs(settings, values(ts.constant_lr, lr_grid(settings)), budget, seed, spread=len(families) > 1)
    return float(best(runs)[0]), {f.name: float(best(runs, i)[0]) for i, f in enumerate(families)}


def best_fixed_lr(settings: TeachingSettings, n_envs: int = 16, seed: int = 0, budget: int | None = None) -> int:
    """The learning-rate level (all data, true labels) with the fewest steps on training students
    and families (``budget``: ``n_envs`` students per level)."""
    levels = range(len(settings.lr_scales))
    budget = n_envs * len(levels) if budget is None else budget
    found, _ = tune(with_split(settings, "train"), {str(i): partial(fixed, lr_level=i) for i in levels}, budget, seed)
    return int(found)


def best_fixed_directive(settings: TeachingSettings, n_envs: int = 16, seed: int = 0,
                         budget: int | None = None) -> tuple[int, int]:
    """The (learning-rate level, target level) pair, all data, with the fewest steps on training
    students and families (``budget``: ``n_envs`` students per pair): a stronger reference than
    plain SGD, since it also tunes distillation."""
    pairs = [(lr, t) for lr in range(len(settings.lr_scales)) for t in range(1 + len(settings.temperatures))]
    budget = n_envs * len(pairs) if budget is None else budget
    candidates = {f"{lr},{t}": partial(fixed, lr_level=lr, target=t) for lr, t in pairs}
    found, _ = tune(with_split(settings, "train"), candidates, budget, seed)
    lr, target = found.split(",")
    return int(lr), int(target)


# ---------------------------------------------------------------------------- all baselines
def _span(lrs: Mapping[str, float]) -> str:
    """A short account of per-family rates for a table row (the policy's ``lrs`` holds them all)."""
    return f"{min(lrs.values()):.3g} to {max(lrs.values()):.3g} over {len(lrs)} families"


def baselines(settings: TeachingSettings, seed: int = 0, budget: int = DEFAULT_BUDGET, tuned_directive: bool = True,
              held_out_oracle: bool = True) -> dict[str, Policy]:
    """Every baseline by display name (tuned values in the name), each tuned baseline on ``budget``
    training students (pass the teacher's ``n_envs * iterations`` for a fair comparison). The
    per-family rows appear only when the preset has several training families (else they equal
    the constant rate), the :data:`ORACLE` row only with ``held_out_oracle`` and held-out families;
    ``tuned_directive`` adds the best fixed (lr level, targets) directive (:data:`TUNED`)."""
    train, held_out = with_split(settings, "train"), with_split(settings, "held-out")
    lr, lrs = constant_lrs(train, budget, seed)
    found: dict[str, Policy] = {
        "plain SGD": plain_sgd(), "random": random_directives(seed), "curriculum": curriculum(),
        "always distil": always_distil(), f"best constant lr ({lr:.3g})": ts.constant_lr(lr)}
    if len(lrs) > 1:
        found[f"lr per family ({_span(lrs)}; others: nearest's)"] = ts.PerFamilyLR(lrs, train.families)
    if held_out_oracle and held_out.families != train.families:  # mlp-fixed holds nothing out
        _, lrs = constant_lrs(held_out, budget, seed)
        found[f"{ORACLE}: lr per held-out family ({_span(lrs)})"] = ts.PerFamilyLR(lrs, held_out.families)
    schedules = (("cosine", "peak", ts.cosine, 2), ("one-cycle", "peak", ts.one_cycle, 2),
                 ("reduce on plateau", "start", ts.ReduceOnPlateau, 0))
    for label, knob, make, above in schedules:
        value = float(tune(train, values(make, lr_grid(settings, above)), budget, seed)[0])
        found[f"{label} ({knob} {value:.3g})"] = make(value)
    found[f"bandit curriculum (lr {lr:.3g})"] = ts.BanditCurriculum(lr, seed)
    if tuned_directive:
        level, target = best_fixed_directive(settings, seed=seed, budget=budget)
        targets = "labels" if target == 0 else f"distil T={settings.temperatures[target - 1]}"
        found[f"{TUNED} (x{settings.lr_scales[level]}, {targets})"] = fixed(lr_level=level, target=target)
    return found
