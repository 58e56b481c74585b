"""The referential track: evaluation, the channel cut, role policies, methods under the protocol."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from commchannels.benchmark.protocol import run_one
from commchannels.benchmark.referential import RolePolicies, evaluate, make_game, random_policy
from commchannels.envs.referential.views import build_spaces


class AttributeOracle:
    """A hand-made language for the 2x4 game: token 1 + 4a + b names object (a, b); the receiver
    picks the candidate it names. ``cut`` checks what the channel is worth."""

    def __init__(self, game) -> None:
        self.game = game

    def code(self, objects: torch.Tensor) -> torch.Tensor:  # one-hot attributes -> (B,) object index
        values = objects.reshape(*objects.shape[:-1], 2, 4).argmax(-1)
        return values[..., 0] * 4 + values[..., 1]

    def send(self, objects: torch.Tensor) -> torch.Tensor:
        tokens = torch.zeros(len(objects), self.game.max_len, dtype=torch.long)
        code = self.code(objects[:, 0])
        tokens[:, 0], tokens[:, 1] = 1 + code // 4, 1 + code % 4
        return tokens

    def receive(self, message: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        named = (message[:, 0] - 1) * 4 + (message[:, 1] - 1)
        return (self.code(candidates) == named[:, None]).long().argmax(dim=1)


def test_random_policy_scores_chance(tiny_task):
    metrics = evaluate(tiny_task, random_policy(tiny_task, seed=0))
    chance = 1 / tiny_task.env["n_candidates"]
    assert abs(metrics["train_acc"] - chance) < 0.06 and abs(metrics["test_acc"] - chance) < 0.06
    assert abs(metrics["channel_gain"]) < 0.08 and abs(metrics["topsim"]) < 0.1


def test_a_perfect_language_scores_one_and_the_cut_channel_chance(tiny_task):
    metrics = evaluate(tiny_task, AttributeOracle(make_game(tiny_task)))
    assert metrics["train_acc"] == 1.0 and metrics["test_acc"] == 1.0  # compositional: held-out objects too
    assert metrics["cut_acc"] < 0.5 and metrics["channel_gain"] > 0.5
    assert metrics["topsim"] > 0.9 and metrics["posdis"] > 0.75  # posdis < 1: 12 of the 16 objects


def test_evaluation_is_deterministic(tiny_task):
    assert evaluate(tiny_task, random_policy(tiny_task, 3)) == evaluate(tiny_task, random_policy(tiny_task, 3))


def test_role_policies_see_the_env_observations(tiny_task):
    """The oracle as role policies over the batched env's observations scores as the oracle does."""
    game = make_game(tiny_task)
    oracle = AttributeOracle(game)
    observation_spaces, _ = build_spaces(game)

    def sender(observation: dict) -> torch.Tensor:
        assert set(observation) == set(observation_spaces["sender"].spaces)
        position = int((observation["message"][0] > 0).sum())  # tokens sent so far
        return oracle.send(observation["objects"])[:, position]

    def receiver(observation: dict) -> torch.Tensor:
        assert set(observation) == set(observation_spaces["receiver"].spaces)
        return oracle.receive(observation["message"] - 1, observation["candidates"])  # the env shifts tokens by one

    assert evaluate(tiny_task, RolePolicies(game, sender, receiver)) == evaluate(tiny_task, oracle)


def test_bad_guesses_are_refused(tiny_task):
    class Floats(random_policy):
        def receive(self, message, candidates):
            return torch.zeros(len(message))

    with pytest.raises(ValueError, match="expected integer candidate indices"):
        evaluate(tiny_task, Floats(tiny_task, 0))


def test_a_method_from_a_file_runs_under_the_protocol(tiny_task, tmp_path, monkeypatch):
    path = tmp_path / "my_method.py"
    path.write_text("from commchannels.benchmark.referential import random_policy\n"
                    "def make(task, seed):\n    policy = random_policy(task, seed)\n"
                    "    policy.budget_used = 7\n    return policy\n")
    monkeypatch.setattr("commchannels.benchmark.tasks.TASK_LIST", (tiny_task,))
    row = run_one(tiny_task, f"{path}:make", seed=0)
    assert row["task"] == "referential-tiny@1" and row["method"] == "my_method.py:make" and row["budget_used"] == 7
    assert 0.0 <= row["score"] <= 1.0 and row["train_seconds"] >= 0.0
    with pytest.raises(ValueError, match="has no attribute 'nope'"):
        run_one(tiny_task, f"{path}:nope", seed=0)
    with pytest.raises(ValueError, match="neither a built-in method"):
        run_one(tiny_task, "not-a-method", seed=0)


def test_the_protocol_checks_the_budget_seeds_and_copies_the_task(tiny_task, tmp_path):
    path = tmp_path / "greedy_method.py"
    path.write_text("import torch\nfrom commchannels.benchmark.referential import random_policy\n"
                    "def over(task, seed):\n    policy = random_policy(task, seed)\n"
                    "    policy.budget_used = task.budget + 1\n    return policy\n"
                    "def meddles(task, seed):\n    task.env['n_candidates'] = 2\n"
                    "    policy = random_policy(task, seed)\n    policy.draw = float(torch.rand(()))\n"
                    "    return policy\n")
    with pytest.raises(ValueError, match=r"trained on 5,121 games, over the budget of referential-tiny@1 \(5,120\)"):
        run_one(tiny_task, f"{path}:over", seed=0)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    row = run_one(tiny_task, f"{path}:meddles", seed=0)
    assert torch.equal(torch.get_rng_state(), before)  # the global generators are restored
    assert tiny_task.env["n_candidates"] == 3 and row["train_acc"] < 0.5  # scored on the real 3-candidate game


def test_builtin_methods_of_other_tracks_do_not_apply(tiny_task):
    assert run_one(tiny_task, "codistill", seed=0) is None


@pytest.mark.parametrize("method", ["gumbel", "reinforce", "continuous"])
def test_builtin_methods_learn_above_chance_and_spend_the_budget(tiny_task, method):
    task = dataclasses.replace(tiny_task, budget=128 * 150)
    row = run_one(task, method, seed=0)
    assert row["budget_used"] == task.budget
    assert row["train_acc"] > 0.6, row  # chance is 1/3
    assert row["channel_gain"] > 0.2, row


def test_builtin_methods_are_deterministic(tiny_task):
    first, second = (run_one(tiny_task, "gumbel", seed=1) for _ in range(2))
    drop = ("train_seconds", "eval_seconds")
    assert {k: v for k, v in first.items() if k not in drop} == {k: v for k, v in second.items() if k not in drop}
