"""The batched teaching core: directives applied as specified, rewards, episode ends,
divergence, determinism, the teacher-model cache and the MNIST IDX path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from commchannels.data import load_dataset, write_idx
from commchannels.envs.teaching import TeachingCore, TeachingSettings
from commchannels.envs.teaching.pretrained import pretrained_teacher, train_teacher_model

SMALL = {"hidden": (8,), "horizon": 4, "updates_per_step": 2, "batch_size": 8, "max_val": 60, "n_probe": 3,
         "teacher_hidden": (16,), "teacher_epochs": 2}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_core(cache, n_envs=2, seed=0, **kwargs):
    return TeachingCore(TeachingSettings(**{**SMALL, "cache_dir": cache, **kwargs}), n_envs=n_envs, seed=seed)


def record_batches(core):
    """Wrap the students' SGD step to record every batch (inputs, targets, learning rates)."""
    seen = []
    original = core.students.sgd_step

    def spy(x, targets, lr, **kwargs):  # one kind of student: slot order is the environments' order
        seen.append((x.clone(), targets.clone(), lr.clone()))
        return original(x, targets, lr, **kwargs)

    core.students.sgd_step = spy
    return seen


def test_class_bucket_batches_hold_only_that_class(cache):
    core = make_core(cache, n_envs=3)
    core.reset(seed=1)
    seen = record_batches(core)
    classes = [2, 7, 9]
    core.step(torch.tensor([[1 + c, 0, 0] for c in classes]))
    assert len(seen) == core.settings.updates_per_step
    for _, targets, _ in seen:
        assert targets.argmax(-1).tolist() == [[c] * core.settings.batch_size for c in classes]
        assert torch.equal(targets.sum(-1), torch.ones(3, core.settings.batch_size))  # one-hot


def test_difficulty_buckets_rank_by_teacher_confidence(cache):
    core = make_core(cache, n_difficulty=3)
    task = core.task
    first = 1 + task.n_classes
    confidence = [task.teacher_confidence[task.bucket_members(first + d)] for d in range(3)]
    assert confidence[0].min() >= confidence[1].max() >= confidence[1].min() >= confidence[2].max()
    assert sum(len(c) for c in confidence) == len(task.y_train)
    core.reset(seed=0)
    seen = record_batches(core)
    core.step(torch.tensor([[first + 2, 0, 0]] * 2))
    hard = task.x_train[task.bucket_members(first + 2)]
    for x, _, _ in seen:
        for row in x.reshape(-1, x.shape[-1]):
            assert bool((hard == row).all(1).any())


def test_learning_rate_level_scales_the_update(cache):
    deltas = {}
    for level in (0, 3):
        core = make_core(cache, n_envs=2, updates_per_step=1, lr_scales=(0.5, 1.0, 2.0, 4.0))
        core.reset(seed=5)
        before = [p.clone() for p in core.students.parameters]
        core.step(torch.tensor([[0, level, 0]] * 2))
        deltas[level] = [p - b for p, b in zip(core.students.parameters, before)]
    for small, large in zip(deltas[0], deltas[3]):
        assert torch.allclose(large, 8.0 * small, atol=1e-6)  # 4.0 / 0.5
        assert small.abs().max() > 0


def test_distillation_targets_are_teacher_softened_predictions(cache):
    core = make_core(cache, temperatures=(2.0, 5.0))
    core.reset(seed=0)
    seen = record_batches(core)
    core.step(torch.tensor([[0, 0, 2], [0, 0, 1]]))
    model = pretrained_teacher(load_dataset("digits"), (16,), 2, cache_dir=cache)
    for x, targets, _ in seen:
        with torch.no_grad():
            logits = model(x.reshape(-1, x.shape[-1])).reshape(2, -1, core.task.n_classes)
        assert torch.allclose(targets[0], (logits[0] / 5.0).softmax(-1), atol=1e-5)
        assert torch.allclose(targets[1], (logits[1] / 2.0).softmax(-1), atol=1e-5)


def test_time_reward_termination_and_truncation(cache):
    core = make_core(cache, n_envs=2, target_accuracy=None, horizon=3)
    core.reset(seed=0)
    for step in range(3):
        out = core.step(torch.zeros(2, 3, dtype=torch.long))
        assert out["reward"].tolist() == [-1.0, -1.0]
        assert out["truncated"].tolist() == [step == 2] * 2 and not out["terminated"].any()
    assert core.step(torch.zeros(2, 3, dtype=torch.long))["reward"].tolist() == [0.0, 0.0]  # frozen
    reached = make_core(cache, target_accuracy=0.0)
    reached.reset(seed=0)
    out = reached.step(torch.zeros(2, 3, dtype=torch.long))
    assert out["terminated"].all() and out["reached"].all() and out["sgd_steps"].tolist() == [2, 2]


def test_gain_reward_is_accuracy_change(cache):
    core = make_core(cache, reward="gain", target_accuracy=None)
    core.reset(seed=3)
    before = core.accuracy.clone()
    out = core.step(torch.tensor([[0, 4, 0], [0, 0, 1]]))
    assert torch.allclose(out["reward"], core.accuracy - before)


def test_divergence_ends_the_episode_with_a_penalty(cache):
    core = make_core(cache, n_envs=2, lr_scales=(1.0, 1e30))
    core.reset(seed=0)
    out = core.step(torch.tensor([[0, 1, 0], [0, 0, 0]]))
    assert out["diverged"].tolist() == [True, False]
    assert out["terminated"].tolist() == [True, False]
    assert out["reward"].tolist() == [-core.settings.horizon, -1.0]
    assert torch.isfinite(core.teacher_observation()).all()
    assert core.students.finite().all()  # quarantined: no NaN left in any student


def test_injected_nan_is_caught(cache, monkeypatch):
    core = make_core(cache, reward="gain")
    core.reset(seed=0)
    monkeypatch.setattr(core.students, "sgd_step", lambda x, t, lr, **kw: torch.tensor([float("nan"), 0.5]))
    out = core.step(torch.zeros(2, 3, dtype=torch.long))
    assert out["diverged"].tolist() == [True, False] and out["reward"][0] == -1.0


def test_rollouts_are_deterministic_under_scrambled_global_rngs(cache, scramble_global_rngs):
    traces = []
    for global_seed in (1, 999):
        scramble_global_rngs(global_seed)
        core = make_core(cache, n_envs=3, seed=11)
        actions = torch.Generator().manual_seed(4)
        trace = [core.reset().clone()]
        for _ in range(2):
            while not bool(core.done.all()):
                d = (torch.rand(3, 3, generator=actions) * torch.tensor(core.action_nvec)).long()
                trace += list(core.step(d).values()) + [core.teacher_observation()]
            trace.append(core.reset())
        traces.append(trace)
    assert all(torch.equal(a, b) for a, b in zip(*traces))
    other = make_core(cache, n_envs=3, seed=12)
    assert not torch.equal(other.reset(), traces[0][0])


def test_bad_directives_and_reports_raise(cache):
    core = make_core(cache, student_speaks=True, report_len=2, report_vocab=3)
    with pytest.raises(ValueError, match="must be reset"):
        core.step(torch.zeros(2, 3, dtype=torch.long))
    core.reset(seed=0)
    with pytest.raises(ValueError, match="out of range"):
        core.step(torch.tensor([[0, 99, 0], [0, 0, 0]]))
    with pytest.raises(ValueError, match="expected 2 tokens in"):
        core.report(torch.tensor([[0, 3], [1, 1]]))
    core.report(torch.tensor([[2, 1], [0, 0]]))
    obs = core.teacher_observation()
    assert obs.shape == (2, 1 + 2 * 3) and obs[0, 1:].tolist() == [0, 0, 1, 0, 1, 0]
    with pytest.raises(ValueError, match="reward='speed' is not allowed"):
        TeachingSettings(reward="speed")
    with pytest.raises(ValueError, match="lr_scales"):
        TeachingSettings(lr_scales=(1.0, -2.0))


def test_corrupt_cache_is_detected_and_rebuilt(tmp_path):
    data = load_dataset("digits")
    first = pretrained_teacher(data, (8,), 1, cache_dir=tmp_path)
    (path,) = tmp_path.glob("teacher-digits-*.pt")
    reference = {k: v.clone() for k, v in first.state_dict().items()}
    path.write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="corrupt"):
        rebuilt = pretrained_teacher(data, (8,), 1, cache_dir=tmp_path)
    assert all(torch.equal(reference[k], v) for k, v in rebuilt.state_dict().items())  # deterministic
    saved = torch.load(path, weights_only=True)
    saved["state"]["net.0.bias"][0] += 1.0  # loadable, but the checksum no longer matches
    torch.save(saved, path)
    with pytest.warns(UserWarning, match="checksum mismatch"):
        again = pretrained_teacher(data, (8,), 1, cache_dir=tmp_path)
    assert torch.equal(again.state_dict()["net.0.bias"], reference["net.0.bias"])
    assert torch.equal(train_teacher_model(data, (8,), 1).state_dict()["net.0.bias"], reference["net.0.bias"])


def test_mnist_idx_path(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 60), ("t10k", 30)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        images = rng.integers(0, 40, size=(n, 6, 6), dtype=np.uint8)
        images[:, 0, :] = labels[:, None] * 25  # a learnable signal
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte", images)
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte", labels)
    core = TeachingCore(TeachingSettings(**{**SMALL, "dataset": "mnist", "data_path": str(tmp_path),
                                            "cache_dir": str(tmp_path / "cache")}), n_envs=2, seed=0)
    assert core.task.x_train.shape == (60, 36) and core.task.x_val.shape == (30, 36)
    core.reset(seed=0)
    out = core.step(torch.tensor([[3, 1, 1], [0, 0, 0]]))
    assert torch.isfinite(out["loss"]).all()
    with pytest.raises(ValueError, match="data_path"):
        TeachingSettings(dataset="mnist")
