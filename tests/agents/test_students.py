"""Batched students against per-student autograd references: every kind, padded together."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from commchannels.agents.students import BatchedMLP, StudentSpec, log_sum_exp

ACT = {"relu": torch.relu, "tanh": torch.tanh, "elu": F.elu, "leaky_relu": lambda h: F.leaky_relu(h, 0.01)}
OPT = {"sgd": lambda p, lr: torch.optim.SGD(p, lr=lr),
       "momentum": lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9),
       "rmsprop": lambda p, lr: torch.optim.RMSprop(p, lr=lr),
       "adam": lambda p, lr: torch.optim.Adam(p, lr=lr)}
SPECS = (StudentSpec(hidden=(8,)), StudentSpec(hidden=(5, 7), activation="tanh", optimiser="momentum", batch_size=3),
         StudentSpec(hidden=(6, 6, 4), activation="elu", optimiser="adam", init_scale=2.0, batch_size=5),
         StudentSpec(hidden=(3,), activation="leaky_relu", optimiser="rmsprop", batch_size=2))


def own_parameters(students: BatchedMLP, b: int) -> list[torch.Tensor]:
    """Student ``b``'s unpadded weights and biases, as leaf tensors."""
    spec = students.specs[int(students.kind[b])]
    sizes = [students.sizes[0], *spec.hidden, students.sizes[-1]]
    padded = students.parameters_of(b)
    n_layers = len(students.weights)
    params = []
    for layer, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        index = n_layers - 1 if layer == len(sizes) - 2 else layer
        params.append(padded[index][:n_in, :n_out].clone().requires_grad_())
        params.append(padded[n_layers + index][:n_out].clone().requires_grad_())
    return params


def reference_forward(params: list[torch.Tensor], x: torch.Tensor, activation: str) -> torch.Tensor:
    h = x
    for layer in range(0, len(params), 2):
        h = h @ params[layer] + params[layer + 1]
        if layer < len(params) - 2:
            h = ACT[activation](h)
    return h


def test_mixed_students_match_autograd_and_torch_optimisers():
    torch.manual_seed(0)
    B, n_features, classes, lr = 8, 4, 3, 0.05
    students = BatchedMLP(n_features, classes, (), B, specs=SPECS)
    kind = torch.arange(B) % len(SPECS)
    students.init_(torch.Generator().manual_seed(1), kind=kind)
    refs = [own_parameters(students, b) for b in range(B)]
    optimisers = [OPT[SPECS[int(kind[b])].optimiser](refs[b], lr) for b in range(B)]
    for _ in range(3):
        x = torch.randn(B, students.max_batch, n_features)
        targets = F.one_hot(torch.randint(classes, (B, students.max_batch)), classes).float()
        loss = students.sgd_step(x, targets, torch.full((B,), lr))
        for b in range(B):
            spec = SPECS[int(kind[b])]
            n = spec.batch_size
            logits = reference_forward(refs[b], x[b, :n], spec.activation)
            expected = F.cross_entropy(logits, targets[b, :n])
            optimisers[b].zero_grad()
            expected.backward()
            optimisers[b].step()
            assert loss[b].item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-6)
    for b in range(B):
        for got, want in zip(own_parameters(students, b), refs[b]):
            torch.testing.assert_close(got, want.detach(), rtol=1e-4, atol=1e-5)
    # the padding stayed exactly zero: padded and skipped units never move
    first = students.parameters_of(0)  # kind 0: one hidden layer of 8 units
    assert first[0][:, SPECS[0].hidden[0]:].abs().sum() == 0
    assert first[1].abs().sum() == 0 and first[2].abs().sum() == 0
    # and the caller's order is kept: forward matches each student's own network
    x = torch.randn(5, n_features)
    logits = students.forward(x)
    for b in range(B):
        own = reference_forward(own_parameters(students, b), x, SPECS[int(kind[b])].activation)
        torch.testing.assert_close(logits[b], own.detach(), rtol=1e-5, atol=1e-5)


def test_log_sum_exp_is_torch_logsumexp_bit_for_bit():
    x = torch.randn(6, 40, 10, generator=torch.Generator().manual_seed(0)) * 30
    assert torch.equal(log_sum_exp(x), x.logsumexp(-1, keepdim=True))
    maxes = x.amax(-1, keepdim=True)
    assert torch.equal(log_sum_exp(x, maxes), x.logsumexp(-1, keepdim=True))


def test_identical_students_keep_the_plain_fast_path_and_exports():
    students = BatchedMLP(4, 3, (8,), 2)
    students.init_(torch.Generator().manual_seed(0))
    assert students.moments is None and set(students.state(0)) == {"net.0.weight", "net.0.bias", "net.2.weight",
                                                                  "net.2.bias"}
    varied = BatchedMLP(4, 3, (), 2, specs=SPECS[:2])
    with pytest.raises(ValueError, match="identical ReLU students"):
        varied.state(0)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("activation", "gelu", "activation='gelu' is not allowed"), ("optimiser", "lion", "optimiser='lion'"),
    ("init_scale", 0.0, "init_scale=0.0 is invalid"), ("hidden", (4, 0), r"hidden=\(4, 0\) is invalid"),
    ("batch_size", 0, "batch_size=0 is invalid")])
def test_bad_student_specs_name_the_value(field, value, message):
    with pytest.raises(ValueError, match=message):
        StudentSpec(**{field: value})


def test_a_pickled_copy_keeps_its_parameters_in_one_buffer():
    import copy
    import pickle

    students = BatchedMLP(4, 3, (), 2, specs=SPECS[:2])
    students.init_(torch.Generator().manual_seed(0), kind=torch.tensor([1, 0]))
    for clone in (pickle.loads(pickle.dumps(students)), copy.deepcopy(students)):
        x, targets = torch.randn(2, 8, 4), torch.full((2, 8, 3), 1 / 3)
        clone.sgd_step(x, targets, torch.full((2,), 0.1))
        assert clone.weights[0].data_ptr() == clone.flat.data_ptr()  # the views follow the updates
        assert not torch.equal(clone.flat, students.flat)
        torch.testing.assert_close(clone.forward(x[0]), copy.deepcopy(clone).forward(x[0]))


def test_a_zero_learning_rate_freezes_a_student_and_its_optimiser_state():
    B, n_features, classes = 8, 4, 3
    students = BatchedMLP(n_features, classes, (), B, specs=SPECS)
    students.init_(torch.Generator().manual_seed(1), kind=torch.arange(B) % len(SPECS))
    x = torch.randn(B, students.max_batch, n_features)
    targets = F.one_hot(torch.randint(classes, (B, students.max_batch)), classes).float()
    lr = torch.full((B,), 0.05)
    students.sgd_step(x, targets, lr)
    frozen = torch.arange(B) % 2 == 0
    slots = students._to_slots(frozen)
    before = [s.clone() for s in (students.flat, students.moments, students.squares, students.steps)]
    students.sgd_step(x, targets, torch.where(frozen, 0.0, lr))
    after = (students.flat, students.moments, students.squares, students.steps)
    for old, new in zip(before, after):
        assert torch.equal(old[slots], new[slots])
    assert not torch.equal(before[0][~slots], students.flat[~slots])
    # a frozen student's non-finite gradient does not leak into its parameters or state
    huge = students._to_slots(torch.arange(B) == 0)
    students.flat[huge] *= 1e30
    before = [s.clone() for s in (students.flat, students.moments, students.squares)]
    students.sgd_step(x, targets, torch.where(torch.arange(B) == 0, 0.0, lr))
    for old, new in zip(before, (students.flat, students.moments, students.squares)):
        assert torch.equal(old[huge], new[huge])
    # a student frozen from its very first step stays finite (no 0/0 bias correction)
    fresh = BatchedMLP(n_features, classes, (), B, specs=SPECS)
    fresh.init_(torch.Generator().manual_seed(2), kind=torch.arange(B) % len(SPECS))
    fresh.sgd_step(x, targets, torch.zeros(B))
    assert fresh.finite().all()
