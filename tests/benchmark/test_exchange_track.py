"""The exchange track: evaluation against a hand computation, the built-in methods' bytes, learning."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from commchannels.benchmark import exchange
from commchannels.benchmark.exchange import ExchangeOutcome, accuracies, evaluate
from commchannels.benchmark.protocol import BUILTIN, run_one
from commchannels.benchmark.tasks import Task, get_task
from commchannels.data import load_dataset
from commchannels.training.exchange.loop import accuracy, load_data

# digits (sklearn, no download), 2 workers, MLP of 8 hidden units; PowerSGD compresses and
# codistillation distils early enough to show in 20 steps
TINY = Task(name="exchange-tiny", version=1, track="exchange", description="test-only",
            env={"dataset": "digits", "workers": 2, "model": "mlp", "batch_size": 8, "train_size": 300,
                 "hidden": (8,), "powersgd_start": 5, "burn_in": 0, "public_batch": 20},
            budget=20, budget_unit="steps", chance=0.1, metrics=("test_acc", "test_acc_min", "bytes_sent"))
METHODS = ("independent", "sync_ddp", "powersgd", "diloco", "codistill")


class Constant(nn.Module):
    """Always predicts ``label``."""

    def __init__(self, label: int) -> None:
        super().__init__()
        self.label = label

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.one_hot(torch.full((len(x),), self.label), 10).float()


@pytest.fixture(scope="module")
def outcomes() -> dict[str, ExchangeOutcome]:
    return {name: getattr(exchange, name)(TINY, seed=0) for name in METHODS}


def test_accuracies_by_hand():
    x = torch.tensor([[2.0, 1.0], [0.0, 1.0], [3.0, -1.0], [1.0, 5.0]])  # argmax: 0, 1, 0, 1
    model = nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))
        model.bias.zero_()
    assert accuracies([model], x, torch.tensor([0, 1, 0, 0])) == [0.75]
    assert model.training  # the evaluation leaves the mode as it found it


def test_evaluation_uses_the_trainers_data_and_accuracy():
    x, y = exchange.load_test_split(TINY)
    data = load_data(exchange.task_config(TINY))
    assert torch.equal(x, data.x_test) and torch.equal(y, data.y_test)
    torch.manual_seed(0)
    model = nn.Linear(64, 10)
    assert accuracies([model], x, y) == [accuracy(model, x, y)]


def test_evaluate_matches_a_hand_computation():
    y_test = load_dataset("digits").y_test
    by_hand = [float((y_test == label).float().mean()) for label in (0, 3)]
    metrics = evaluate(TINY, ExchangeOutcome([Constant(0), Constant(3)], bytes_sent=1234))
    assert metrics["test_acc"] == pytest.approx(sum(by_hand) / 2)
    assert metrics["test_acc_min"] == pytest.approx(min(by_hand))
    assert metrics["bytes_sent"] == 1234 and metrics["bytes_per_worker_step"] == pytest.approx(1234 / (2 * 20))


def test_evaluate_is_deterministic():
    torch.manual_seed(0)
    models = [nn.Sequential(nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 10)) for _ in range(2)]
    outcome = ExchangeOutcome(models, bytes_sent=0, budget_used=10)
    first = evaluate(TINY, outcome)
    assert first == evaluate(TINY, outcome) and first["bytes_per_worker_step"] == 0.0


@pytest.mark.parametrize(("outcome", "message"), [
    (ExchangeOutcome([Constant(0)], 0), r"models holds 1 entries; expected one nn.Module per worker \(2\)"),
    (ExchangeOutcome([Constant(0)] * 2, -1), r"bytes_sent=-1 is not allowed"),
    (ExchangeOutcome([Constant(0)] * 2, True), r"bytes_sent=True is not allowed"),
    (ExchangeOutcome([Constant(0), "model"], 0), r"models\[1\]='model' is a str"),
    ([Constant(0)] * 2, r"returned list; expected an ExchangeOutcome")])
def test_evaluate_refuses_bad_outcomes(outcome, message):
    with pytest.raises(ValueError, match=message):
        evaluate(TINY, outcome)


def test_builtin_names_match_the_methods():
    entries = {name: spec["exchange"] for name, spec in BUILTIN.items() if "exchange" in spec}
    assert sorted(spec.rpartition(":")[2] for spec in entries.values()) == sorted(METHODS)


def test_methods_send_the_bytes_of_their_method(outcomes):
    sent = {name: o.bytes_sent for name, o in outcomes.items()}
    assert sent["independent"] == 0
    assert 0 < sent["codistill"] < sent["diloco"] < sent["sync_ddp"]
    assert 0 < sent["powersgd"] < sent["sync_ddp"]
    for outcome in outcomes.values():
        assert len(outcome.models) == 2 and outcome.budget_used == 20
    # synchronous SGD trains one model: the workers stay identical
    first, second = (nn.utils.parameters_to_vector(m.parameters()) for m in outcomes["sync_ddp"].models)
    assert torch.equal(first, second)


def test_methods_are_deterministic(outcomes):
    again = exchange.codistill(TINY, seed=0)
    assert again.bytes_sent == outcomes["codistill"].bytes_sent
    assert evaluate(TINY, again) == evaluate(TINY, outcomes["codistill"])


def test_run_one_records_a_row():
    row = run_one(TINY, "independent", seed=1)
    assert row["task"] == "exchange-tiny@1" and row["bytes_sent"] == 0 and row["budget_used"] == 20
    assert 0.0 <= row["score"] <= 1.0 and 0.0 <= row["test_acc_min"] <= row["test_acc"] <= 1.0


@pytest.mark.slow
def test_sync_ddp_beats_chance_on_mnist1d():
    task = dataclasses.replace(get_task("exchange-mnist1d"), budget=300)
    row = run_one(task, "sync-ddp", seed=0)
    assert row["test_acc"] > 0.3 and row["bytes_sent"] > 0  # chance is 0.1
