"""The RL-library methods of the referential track: sb3-ppo and benchmarl-mappo (optional)."""

from __future__ import annotations

import importlib.util
from dataclasses import replace

import pytest
import torch

from commchannels.benchmark import referential, rl_methods
from commchannels.benchmark.protocol import resolve_method, run_one
from commchannels.benchmark.tasks import get_task

SMALL = get_task("referential-small")
TINY = replace(SMALL, budget=300, eval_games=64)  # the small game, a few hundred games of training


@pytest.fixture
def small_batches(monkeypatch):
    """Batches that fit a budget of a few hundred games (the real ones are sized for the tasks)."""
    monkeypatch.setattr(rl_methods, "SB3_ENVS", 16)
    monkeypatch.setattr(rl_methods, "SB3_N_STEPS", 4)
    monkeypatch.setattr(rl_methods, "SB3_PPO", {"batch_size": 32, "n_epochs": 2})
    monkeypatch.setattr(rl_methods, "BENCHMARL_ENVS", 32)
    monkeypatch.setattr(rl_methods, "BENCHMARL_EPOCHS", 1)


def needs_benchmarl() -> None:
    for module in ("torchrl", "hydra", "benchmarl"):  # found, not imported: benchmarl 1.5 needs the shim first
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"BenchMARL is optional ({module!r} is missing): pip install -e '.[benchmarl]' && "
                        "pip install --no-deps benchmarl==1.5.2")


def check_policy(policy, task) -> dict:
    assert isinstance(policy, referential.RolePolicies)
    assert 0 < policy.budget_used <= task.budget
    metrics = referential.evaluate(task, policy)
    for key in ("train_acc", "test_acc", "cut_acc"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["topsim"] is not None  # discrete messages, analysed
    return metrics


@pytest.mark.parametrize("method", ["sb3-ppo", "benchmarl-mappo"])
def test_builtin_names_resolve(method):
    if method.startswith("benchmarl"):
        needs_benchmarl()
    assert callable(resolve_method(method, SMALL))


def test_sb3_ppo_gives_a_greedy_policy_within_the_budget(small_batches, one_torch_thread):
    policy = rl_methods.sb3_ppo(TINY, seed=0)
    check_policy(policy, TINY)
    objects = referential.make_game(TINY).sample(32, torch.Generator().manual_seed(1), "train").sender_objects
    again = rl_methods.sb3_ppo(TINY, seed=0)
    assert again.budget_used == policy.budget_used
    assert torch.equal(policy.send(objects), again.send(objects)), "same seed, same language"


def test_sb3_ppo_plays_another_registered_game(small_batches, one_torch_thread):
    digits = replace(get_task("referential-digits"), budget=200, eval_games=32)
    check_policy(rl_methods.sb3_ppo(digits, seed=0), digits)


def test_rl_methods_reject_tasks_of_other_tracks():
    with pytest.raises(ValueError, match="expected a referential task"):
        rl_methods.sb3_ppo(get_task("teaching-mlp-arch"), seed=0)


def test_benchmarl_mappo_gives_a_greedy_policy_within_the_budget(small_batches, one_torch_thread):
    needs_benchmarl()
    policy = rl_methods.benchmarl_mappo(TINY, seed=0)
    metrics = check_policy(policy, TINY)
    assert metrics["mean_length"] >= 1.0


def test_benchmarl_mappo_rejects_reconstruction(small_batches):
    needs_benchmarl()
    task = replace(TINY, env={**TINY.env, "mode": "reconstruction"})
    with pytest.raises(ValueError, match="mode='reconstruction' is not supported"):
        rl_methods.benchmarl_mappo(task, seed=0)


@pytest.mark.slow
def test_sb3_ppo_beats_chance_on_referential_small():
    row = run_one(SMALL, "sb3-ppo", seed=0)
    assert row["budget_used"] <= SMALL.budget
    assert row["train_acc"] > 0.6 and row["channel_gain"] > 0.2, row  # chance is 1/3
