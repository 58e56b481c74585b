"""The tuned baselines: every one runs, the schedules have their textbook shapes, and tuning
never touches an evaluation seed or a held-out family (except the oracle, by name)."""

import math
from types import SimpleNamespace

import pytest
import torch

from commchannels.agents.students import StudentSpec
from commchannels.envs.teaching import TeachingCore, TeachingSettings
from commchannels.envs.teaching.families import StudentFamily
from commchannels.registry import REGISTRY
from commchannels.training import teaching_baselines as tb
from commchannels.training import teaching_schedules as ts

pytestmark = pytest.mark.usefixtures("one_torch_thread")
FEW_RATES = {"lr_scales": (1.0, 3.0)}  # a 3-point grid keeps tuning fast


def tiny(cache: str, **overrides) -> TeachingSettings:
    """The registry's debug settings: a fraction of a second per episode."""
    return TeachingSettings(**{**REGISTRY["teaching_v0"].debug_kwargs, "cache_dir": cache, **overrides})


class Checked:
    """Wraps a policy, checking each output against the protocol and recording the directives."""

    def __init__(self, policy: tb.Policy) -> None:
        self.policy, self.directives, self.resets = policy, [], 0

    def reset(self, core: TeachingCore) -> None:
        self.resets += 1
        if hasattr(self.policy, "reset"):
            self.policy.reset(core)

    def __call__(self, core: TeachingCore):
        out = self.policy(core)
        directives, lr = out if isinstance(out, tuple) else (out, None)
        core.check_directives(directives)
        if lr is not None:
            assert lr.shape == (core.n_envs,) and torch.isfinite(lr).all() and (lr > 0).all(), lr
        self.directives.append(directives.clone())
        return out


# ---------------------------------------------------------------------------- every baseline
def test_every_baseline_runs_on_held_out_students(cache):
    settings = tiny(cache, students="mlp-arch", **FEW_RATES)
    found = tb.baselines(settings, budget=64)
    for label in ("plain SGD", "random", "curriculum", "always distil", "best constant lr (", "lr per family (",
                  f"{tb.ORACLE}: lr per held-out family", "cosine (peak ", "one-cycle (peak ",
                  "reduce on plateau (start ", "bandit curriculum (lr ", tb.TUNED):
        assert sum(name.startswith(label) for name in found) == 1, (label, list(found))
    core = TeachingCore(tb.with_split(settings, "held-out"), n_envs=4, seed=0)
    for name, policy in found.items():
        checked = Checked(policy)
        result = tb.run_episode(core, checked, tb.EVAL_SEED_BASE)
        assert checked.resets == 1 and len(checked.directives) == int(core.t.max()), name
        assert ((result["steps"] > 0) & (result["steps"] <= 8)).all(), name  # horizon 4 x 2 updates
    fixed = tb.baselines(tiny(cache, **FEW_RATES), budget=32, tuned_directive=False)  # one family, none held out
    assert not any("per family" in name or tb.TUNED in name for name in fixed)


def test_evaluate_breaks_steps_down_by_family(cache):
    settings = tiny(cache, students="mlp-data", split="held-out")
    result = tb.evaluate(settings, tb.plain_sgd(), n_seeds=2, students_per_seed=6)
    names = {f.name for f in settings.families}
    assert result["per_family_steps"] and set(result["per_family_steps"]) <= names
    assert all(0 < steps <= 8 for steps in result["per_family_steps"].values())


def test_evaluate_reports_the_area_under_the_learning_curve(cache):
    settings = tiny(cache, students="mlp-data", split="held-out")
    result = tb.evaluate(settings, tb.plain_sgd(), n_seeds=2, students_per_seed=3)
    assert 0.0 <= result["auc"] <= 1.0 and result["auc"] > 0.0
    assert result["student_steps_mean"] == pytest.approx(result["steps_mean"])


def test_learning_curve_carries_the_last_accuracy_of_finished_students():
    curve = tb.LearningCurve(2)
    for t, accuracy in (([1, 1], [0.2, 0.4]), ([2, 1], [0.6, 0.9]), ([3, 1], [0.8, 0.1])):
        curve(SimpleNamespace(t=torch.tensor(t), accuracy=torch.tensor(accuracy)))
    # horizon 4: student 0 ran 3 directives (its last value carried once), student 1 stopped after one
    assert torch.allclose(curve.area(4), torch.tensor([(0.2 + 0.6 + 0.8 + 0.8) / 4, 0.4]))
    with pytest.raises(ValueError, match="horizon=2"):
        curve.area(2)


# ---------------------------------------------------------------------------- tuning
def test_tuning_uses_training_seeds_and_families_only(cache, monkeypatch):
    calls = []
    reset = TeachingCore.reset

    def spy(core, seed=None, family=None):
        calls.append((core.settings.split, seed, None if family is None else family.tolist()))
        return reset(core, seed, family)
    monkeypatch.setattr(TeachingCore, "reset", spy)
    settings = tiny(cache, students="mlp-arch", split="held-out", **FEW_RATES)  # even asked on held-out settings
    assert not any(tb.ORACLE in name for name in tb.baselines(settings, seed=3, budget=64, held_out_oracle=False))
    training_seeds = {tb.training_seed(3, i) for i in range(64)}
    assert calls and all(split == "train" and seed in training_seeds for split, seed, _ in calls)
    forced = {f for _, _, family in calls if family is not None for f in family}
    assert forced == set(range(len(tb.with_split(settings, "train").families)))  # indices into the train split

    calls.clear()
    tb.baselines(settings, seed=3, budget=64)
    oracle = [(seed, family) for split, seed, family in calls if split == "held-out"]
    assert oracle and all(seed in training_seeds and family is not None for seed, family in oracle)


def test_tune_breaks_ties_by_accuracy_and_checks_the_budget(cache):
    settings = tiny(cache, target_accuracy=1.0)  # nobody reaches it: every candidate is censored
    found, scores = tb.tune(settings, tb.values(ts.constant_lr, [1e-6, 0.3]), budget=8)
    assert found == "0.3" and scores["0.3"][0] == scores["1e-06"][0] and scores["0.3"][1] > scores["1e-06"][1]
    runs = tb.tuning_runs(settings, tb.values(ts.constant_lr, [1e-6, 0.1, 0.3]), budget=8)
    assert all(len(run["steps"]) == tb.tuning_share(8, 3) == 2 for run in runs.values())  # 2 left unspent
    assert tb.tuning_cost(8, 3) == 6
    with pytest.raises(ValueError, match="budget=3 is too small for 2 candidates on each of 8 families"):
        tb.tuning_runs(tiny(cache, students="mlp-arch"), tb.values(ts.constant_lr, [0.1, 0.3]), 3, spread=True)


def test_lr_grid_adds_geometric_midpoints():
    settings = TeachingSettings(base_lr=0.1, lr_scales=(1.0, 4.0, 16.0))
    assert tb.lr_grid(settings) == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6])
    assert tb.lr_grid(settings, above=2) == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4])


# ---------------------------------------------------------------------------- per family
def family(name: str, optimiser: str = "sgd", activation: str = "relu", hidden: tuple[int, ...] = (32,),
           batch_size: int = 16, label_noise: float = 0.0) -> StudentFamily:
    return StudentFamily(name, StudentSpec(hidden, activation, 1.0, optimiser, batch_size), label_noise)


def test_nearest_family_matches_the_optimiser_then_most_attributes():
    known = (family("sgd relu 32"), family("sgd tanh 16 batch 8", activation="tanh", hidden=(16,), batch_size=8),
             family("sgd relu 32-32", hidden=(32, 32)), family("sgd tanh 32", activation="tanh"),
             family("adam tanh 32-32", "adam", "tanh", (32, 32)), family("adam relu 32 noisy", "adam", label_noise=0.2))
    nearest = {case: ts.nearest_family(f, known).name for case, f in {
        "7 alike": family("x", hidden=(32, 32, 32)),  # as "sgd relu 32-32", listed later
        "activation before depth": family("x", activation="tanh", hidden=(32, 32)),  # 7 alike as "sgd relu 32-32"
        "optimiser first": family("x", "adam", "elu", (16,), batch_size=8),  # 6 alike as "sgd tanh 16 batch 8"
        "no such optimiser": family("x", "rmsprop", label_noise=0.2),  # 7 alike, 6 as "sgd relu 32"
        "noisier": family("x", label_noise=0.5)}.items()}
    assert nearest == {"7 alike": "sgd relu 32", "activation before depth": "sgd tanh 32",
                       "optimiser first": "adam relu 32 noisy",  # 4 alike as "adam tanh 32-32", depth first
                       "no such optimiser": "adam relu 32 noisy", "noisier": "sgd relu 32"}
    assert ts.nearest_family(family("sgd relu 32", hidden=(8,)), known) is known[0]  # known by name
    with pytest.raises(ValueError, match=r"known=\(\) is invalid"):
        ts.nearest_family(known[0], ())


def test_per_family_lr_gives_each_student_its_family_rate(cache):
    settings = tiny(cache, students="mlp-arch", split="held-out")
    train, held_out = tb.with_split(settings, "train").families, settings.families
    lrs = {f.name: 0.01 * (i + 1) for i, f in enumerate(train)}
    policy = ts.PerFamilyLR(lrs, train)
    core = TeachingCore(settings, n_envs=2 * len(held_out), seed=0)
    core.reset(0, family=torch.arange(2 * len(held_out)) % len(held_out))
    directives, lr = policy(core)
    assert lr.tolist() == pytest.approx([lrs[ts.nearest_family(f, train).name] for f in held_out] * 2)
    assert directives[:, 0].eq(0).all() and directives[:, 2].eq(0).all()
    core = TeachingCore(tb.with_split(settings, "train"), n_envs=len(train), seed=0)
    core.reset(0, family=torch.arange(len(train)))
    assert policy(core)[1].tolist() == pytest.approx(list(lrs.values()))  # a training family keeps its own
    with pytest.raises(ValueError, match=r"no learning rate for the families \['"):
        ts.PerFamilyLR({train[0].name: 0.1}, train)


# ---------------------------------------------------------------------------- schedules
def test_cosine_schedule_matches_hand_computation(cache):
    t = torch.arange(5)
    assert ts.cosine_lr(t, 4, 0.2).tolist() == pytest.approx(
        [0.2, 0.1 * (1 + math.cos(math.pi / 4)), 0.1, 0.1 * (1 + math.cos(3 * math.pi / 4)), 0.0])
    core = TeachingCore(tiny(cache), n_envs=2, seed=0)
    core.reset(0)
    directives, lr = ts.cosine(0.3)(core)
    assert lr.tolist() == pytest.approx([0.3, 0.3]) and directives[:, 0].eq(0).all() and directives[:, 2].eq(0).all()


@pytest.mark.parametrize("total", [1, 4, 10, 40])
def test_one_cycle_matches_torch_one_cycle_lr(total):
    optimiser = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=0.5, total_steps=total)
    expected = []
    for _ in range(total):
        expected.append(optimiser.param_groups[0]["lr"])
        optimiser.step()
        if len(expected) < total:
            scheduler.step()
    assert ts.one_cycle_lr(torch.arange(total), total, 0.5).tolist() == pytest.approx(expected, rel=1e-5)


def test_one_cycle_by_hand():
    lr = ts.one_cycle_lr(torch.tensor([0, 2, 9]), 10, 1.0).tolist()  # warm-up ends at 0.3 * 10 - 1 = 2
    assert lr == pytest.approx([1 / 25, 1.0, 1 / 25 / 1e4])


class FakeCore:
    """Just what the stateful policies read: a settable validation loss and per-class accuracy."""

    def __init__(self, n_envs: int, n_classes: int = 3, n_difficulty: int = 2) -> None:
        self.n_envs = n_envs
        self.settings = SimpleNamespace(plain_lr_level=0, horizon=100)
        self.action_nvec = (1 + n_classes + n_difficulty, 1, 1)
        self.t = torch.zeros(n_envs, dtype=torch.long)
        self.val_loss = torch.ones(n_envs)
        self.accuracy = torch.zeros(n_envs)
        self.per_class = torch.zeros(n_envs, n_classes)

    def step(self, directives: torch.Tensor) -> None:
        """Only training on bucket 2 (class 1) makes progress, on class 1's accuracy."""
        self.t += 1
        self.per_class[:, 1] += 0.01 * (directives[:, 0] == 2)


def test_reduce_on_plateau_halves_like_torch():
    losses = [1.0, 0.9, 0.95, 0.93, 0.92, 0.91, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.49999]
    optimiser = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.4)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimiser, factor=0.5, patience=2)
    core, policy, ours, theirs = FakeCore(1), ts.ReduceOnPlateau(0.4), [], []
    core.val_loss = torch.tensor([losses[0]])
    policy.reset(core)
    for i, loss in enumerate(losses):
        if i:
            core.t += 1
            core.val_loss = torch.tensor([loss])
        ours.append(float(policy(core)[1][0]))
        scheduler.step(loss)
        theirs.append(optimiser.param_groups[0]["lr"])
    assert ours == pytest.approx(theirs)
    assert ours[:6] == pytest.approx([0.4] * 4 + [0.2] * 2)  # 0.95, 0.93, 0.92 no better than 0.9: halved
    assert float(policy(core)[1][0]) == ours[-1]  # no directive applied since: nothing changes


def test_bandit_is_deterministic_under_its_seed(cache):
    core = TeachingCore(tiny(cache), n_envs=4, seed=0)

    def buckets(seed: int) -> torch.Tensor:
        checked = Checked(ts.BanditCurriculum(0.3, seed=seed, epsilon=0.3))
        tb.run_episode(core, checked, tb.training_seed(0, 1))
        return torch.stack(checked.directives)
    assert torch.equal(buckets(5), buckets(5)) and not torch.equal(buckets(5), buckets(6))


def test_bandit_prefers_the_bucket_that_makes_progress():
    core, bandit = FakeCore(16), ts.BanditCurriculum(0.1, seed=0)
    bandit.reset(core)
    chosen = []
    for _ in range(40):
        directives, lr = bandit(core)
        assert lr.eq(0.1).all()
        chosen.append(directives[:, 0])
        core.step(directives)
    counts = torch.bincount(torch.stack(chosen).flatten(), minlength=6)
    assert int(counts.argmax()) == 2 and counts[2] > 0.6 * counts.sum()
