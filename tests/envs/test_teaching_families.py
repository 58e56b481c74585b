"""Student families in the teaching core: deterministic draws, disjoint splits, forced families,
per-family data conditions (noisy labels, imbalance), continuous learning rates and the new
observation features."""

from __future__ import annotations

import pytest
import torch

from commchannels.envs.teaching import TeachingCore, TeachingSettings
from commchannels.envs.teaching.families import PRESETS, StudentFamily, kept_examples, noisy_labels, preset_families

SMALL = {"horizon": 3, "updates_per_step": 2, "max_val": 60, "n_probe": 3, "teacher_hidden": (16,),
         "teacher_epochs": 2}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_core(cache, students="mlp-arch", n_envs=16, seed=0, **kwargs):
    settings = TeachingSettings(**{**SMALL, "students": students, "cache_dir": cache, **kwargs})
    return TeachingCore(settings, n_envs=n_envs, seed=seed)


@pytest.mark.parametrize("students", PRESETS)
def test_splits_are_disjoint_and_named(students):
    train, held_out = preset_families(students)
    assert len({f.name for f in train}) == len(train) and len({f.name for f in held_out}) == len(held_out)
    if students != "mlp-fixed":  # the fixed preset holds nothing out: one family
        assert not {f.attributes().values().__repr__() for f in train} & {
            f.attributes().values().__repr__() for f in held_out}
        assert len(train) >= 6 and len(held_out) >= 3


def test_arch_held_out_families_each_have_an_unseen_attribute():
    train, held_out = preset_families("mlp-arch")
    seen = {key: {f.attributes()[key] for f in train} for key in ("optimiser", "activation", "depth")}
    for family in held_out:
        assert any(family.attributes()[key] not in seen[key] for key in seen), family.name


def test_families_are_drawn_from_the_seed_and_mixed_in_a_batch(cache):
    a, b = make_core(cache), make_core(cache)
    a.reset(seed=3)
    b.reset(seed=3)
    assert torch.equal(a.family, b.family) and len(a.family.unique()) > 1
    directive = torch.tensor([[0, 3, 0]]).expand(16, 3)
    for _ in range(2):  # same seed, same directives: same students, batches and observations
        assert torch.equal(a.step(directive)["accuracy"], b.step(directive)["accuracy"])
    assert torch.equal(a.teacher_observation(), b.teacher_observation())
    b.reset(seed=4)
    assert not torch.equal(a.family, b.family)


def test_forcing_families_keeps_every_other_draw(cache):
    core = make_core(cache, n_envs=4)
    core.reset(seed=1)
    drawn = core.family.clone()
    core.reset(seed=1, family=drawn)
    assert torch.equal(core.family, drawn)
    forced = torch.tensor([0, 1, 2, 3])
    core.reset(seed=1, family=forced)
    assert torch.equal(core.family, forced)
    assert core.describe(2).startswith(f"student: {core.families[2].name}")
    with pytest.raises(ValueError, match=r"family \[0, 9, 0, 0\] is invalid; expected 4 indices in \[0, 8\)"):
        core.reset(family=[0, 9, 0, 0])


def test_held_out_split_draws_only_held_out_families(cache):
    core = make_core(cache, split="held-out", n_envs=32)
    core.reset(seed=0)
    names = {core.families[int(i)].name for i in core.family}
    assert names <= {f.name for f in preset_families("mlp-arch")[1]} and len(names) > 1


def test_varied_students_learn_with_their_own_optimisers(cache):
    core = make_core(cache, n_envs=8, horizon=5, updates_per_step=10)
    core.reset(seed=0, family=torch.arange(8))
    rates = torch.tensor([0.3, 0.3, 0.3, 0.3, 0.1, 0.1, 0.01, 0.01])  # near each family's best
    start = core.accuracy.clone()
    for _ in range(5):
        out = core.step(torch.zeros(8, 3, dtype=torch.long), lr=rates)
    assert bool((out["accuracy"] > start + 0.2).all()) and not bool(out["diverged"].any())
    assert bool((out["grad_norm"] > 0).all())


def test_continuous_learning_rates_are_checked(cache):
    core = make_core(cache, n_envs=2)
    core.reset(seed=0)
    with pytest.raises(ValueError, match=r"lr \[0.1, nan\] is invalid; expected 2 finite learning rates >= 0"):
        core.step(torch.zeros(2, 3, dtype=torch.long), lr=[0.1, float("nan")])
    before = core.students.flat.clone()
    core.step(torch.zeros(2, 3, dtype=torch.long), lr=torch.zeros(2))  # rate 0: nothing moves
    assert torch.equal(core.students.flat, before)


def test_noisy_families_train_on_their_own_labels_and_distil_clean_targets(cache):
    family = StudentFamily("noise", label_noise=0.5)
    labels = torch.arange(1000) % 10
    noisy = noisy_labels(labels, 10, family)
    assert 0.45 < float((noisy != labels).float().mean()) < 0.55
    assert torch.equal(noisy, noisy_labels(labels, 10, family))  # drawn once per family
    core = make_core(cache, students="mlp-data", n_envs=6)
    core.reset(seed=0, family=torch.tensor([1, 1, 1, 0, 0, 0]))  # "noise 0.2" and "clean"
    seen = []
    original = core.students.sgd_step
    core.students.sgd_step = lambda x, t, lr, **kw: (seen.append(t.clone()), original(x, t, lr, **kw))[1]
    core.step(torch.tensor([[0, 3, 0]] * 3 + [[0, 3, 1]] * 3))
    order = core.students.order
    distilled = [i for i in range(6) if int(order[i]) >= 3]
    assert all(float(seen[0][i].max()) < 1.0 for i in distilled)  # soft, clean teacher targets


def test_imbalanced_families_keep_fewer_examples_of_later_classes():
    labels = torch.arange(1000) % 10
    keep = kept_examples(labels, 10, StudentFamily("imbalanced", imbalance=0.1))
    counts = torch.bincount(labels[keep], minlength=10)
    assert int(counts[0]) == 100 and int(counts[9]) == 10 and bool((counts[:-1] >= counts[1:]).all())


def test_observation_has_gradient_norm_and_loss_trend(cache):
    core = make_core(cache, students="mlp-fixed", n_envs=2, hidden=(8,))
    obs = core.reset(seed=0)
    assert obs.shape == (2, 5 + 10 + 2 * 3 * 10) and float(obs[0, 3]) == 0.0 and float(obs[0, 4]) == 0.5
    core.step(torch.tensor([[0, 1, 0]] * 2))
    obs = core.teacher_observation()
    assert bool((obs[:, 3] > 0).all()) and bool((obs[:, 4] > 0.5).all())  # gradients flowed, loss fell


def test_bad_family_values_name_them():
    with pytest.raises(ValueError, match="label_noise=1.0 is invalid"):
        StudentFamily("x", label_noise=1.0)
    with pytest.raises(ValueError, match="imbalance=0.0 is invalid"):
        StudentFamily("x", imbalance=0.0)
    with pytest.raises(ValueError, match="students='cnn' is not allowed"):
        TeachingSettings(students="cnn")


def student_state(core, env):
    """Environment ``env``'s parameters and optimiser state (moments, squares, step count)."""
    slot = int(core.students._inverse[env])
    states = [core.students.flat, core.students.moments, core.students.squares, core.students.steps]
    return [s[slot].clone() for s in states if s is not None]


def test_partial_reset_redraws_only_the_masked_environments(cache):
    core = make_core(cache, n_envs=8)
    core.reset(seed=0)
    directives = torch.tensor([[0, 3, 0]]).expand(8, 3)
    for _ in range(2):
        core.step(directives)
    mask = torch.tensor([True, False] * 4)
    kept = {env: (student_state(core, env), int(core.family[env]), float(core.loss[env])) for env in range(1, 8, 2)}
    obs = core.reset(envs=mask)
    for env, (state, family, loss) in kept.items():  # moved to new slots with its optimiser state
        assert all(torch.equal(a, b) for a, b in zip(student_state(core, env), state))
        assert int(core.family[env]) == family and float(core.loss[env]) == loss and int(core.t[env]) == 2
    assert core.t[mask].eq(0).all() and obs[mask, 0].eq(0).all()  # progress 0 in the fresh ones
    assert all(state[-1] == 0 for env in range(0, 8, 2) for state in [student_state(core, env)])


def test_masked_step_leaves_the_other_environments_untouched(cache):
    core = make_core(cache, n_envs=8)
    core.reset(seed=1)
    core.step(torch.tensor([[0, 3, 0]]).expand(8, 3))  # every optimiser has state now
    mask = torch.tensor([True, False] * 4)
    before = {env: student_state(core, env) for env in range(8)}
    out = core.step(torch.tensor([[0, 3, 0]]).expand(8, 3), envs=mask)
    for env in range(8):
        same = all(torch.equal(a, b) for a, b in zip(student_state(core, env), before[env]))
        assert same != bool(mask[env]), env
    assert out["reward"][~mask].eq(0).all() and out["reward"][mask].eq(-1).all()
    assert core.t.tolist() == [2, 1] * 4


def test_bad_environment_masks_raise(cache):
    core = make_core(cache, n_envs=4)
    with pytest.raises(ValueError, match="first reset must reset every environment"):
        core.reset(envs=torch.tensor([True, False, True, True]))
    core.reset(seed=0)
    with pytest.raises(ValueError, match=r"envs mask of dtype torch.int64 .* expected 4 booleans"):
        core.reset(envs=torch.tensor([1, 0, 1, 0]))
    with pytest.raises(ValueError, match=r"shape \(3,\) is invalid; expected 4 booleans"):
        core.step(torch.zeros(4, 3, dtype=torch.long), envs=torch.ones(3, dtype=torch.bool))
