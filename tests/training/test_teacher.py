"""The teacher's policy-gradient loop, its config and CLI, and the teaching baselines."""

from __future__ import annotations

import json

import pytest
import torch

from commchannels.cli import main as cli_main
from commchannels.envs.teaching import TeachingCore
from commchannels.runs import load_checkpoint
from commchannels.training import teaching_baselines as tb
from commchannels.training.teacher import Config, summarize, train

FAST = {"n_envs": 16, "horizon": 8, "updates_per_step": 5, "target_accuracy": 1.0, "reward": "gain",
        "lr": 0.03, "eval_seeds": 3, "eval_students": 4, "show_progress": False, "tensorboard": False}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_config_validation_and_cli_help(capsys):
    with pytest.raises(ValueError, match="reward='fast' is not allowed"):
        Config(reward="fast")
    with pytest.raises(ValueError, match="n_envs=0 is out of range"):
        Config(n_envs=0)
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["train", "teacher", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--student-speaks" in out and "--target-accuracy" in out


def test_small_teacher_beats_random_directives(cache, tmp_path):
    cfg = Config(**FAST, iterations=10, seed=0, cache_dir=cache, run_dir=str(tmp_path / "run"))
    result = train(cfg)
    learned = result.extras["evaluations"]["learned teacher"]["final_accuracy"]
    rand = tb.evaluate(cfg.settings, tb.random_directives(0), 3, 4)["final_accuracy"]
    assert learned > rand + 0.2
    run = tmp_path / "run"
    for name in ("config.json", "metrics.jsonl", "metrics.csv", "checkpoint.pt", "steps_to_target.png",
                 "evaluation.json"):
        assert (run / name).is_file(), name
    state = load_checkpoint(run / "checkpoint.pt")
    assert state["config"]["iterations"] == 10 and "head.weight" in state["teacher"]
    assert json.loads((run / "evaluation.json").read_text())["final"]["eval_reached"] >= 0
    assert "learned teacher" in summarize(result)


def test_training_is_deterministic_and_speaking_mode_runs(cache):
    cfg = Config(**{**FAST, "n_envs": 4, "horizon": 3}, iterations=2, cache_dir=cache, run_dir="")
    first, second = train(cfg), train(cfg)
    assert first.history == second.history
    speaking = train(Config(**{**FAST, "n_envs": 4, "horizon": 3}, iterations=2, student_speaks=True,
                            report_len=2, report_vocab=4, cache_dir=cache, run_dir=""))
    assert speaking.extras["speaker"] is not None and len(speaking.history) == 2


def test_baselines_directives(cache):
    core = TeachingCore(Config(cache_dir=cache, horizon=12).settings, n_envs=3, seed=0)
    core.reset(seed=0)
    first = 1 + core.task.n_classes
    schedule = []
    policy = tb.curriculum()
    while not bool(core.done.all()):
        directive = policy(core)
        schedule.append(int(directive[0, 0]))
        assert directive[:, 1].eq(core.settings.plain_lr_level).all() and directive[:, 2].eq(0).all()
        core.step(directive)
    assert schedule[:6] == [first, first, first + 1, first + 1, first + 2, first + 2][: len(schedule[:6])]
    assert tb.always_distil()(core)[:, 2].eq(1).all() and tb.plain_sgd()(core)[:, 0].eq(0).all()
    random_directives = torch.stack([tb.random_directives(1)(core) for _ in range(50)])
    assert (random_directives < torch.tensor(core.action_nvec)).all()
    small = Config(cache_dir=cache, horizon=2, updates_per_step=1).settings
    lr_level, target = tb.best_fixed_directive(small, n_envs=2)
    assert 0 <= lr_level < len(small.lr_scales) and target in (0, 1)
    assert any("best fixed directive" in name for name in tb.baselines(small, tuned_directive=True))
    mean, half = tb.mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0 and 2.4 < half < 2.5  # t(0.975, 2) * 1 / sqrt(3)


@pytest.mark.slow
def test_teacher_needs_fewer_steps_than_plain_sgd_and_random(cache):
    cfg = Config(n_envs=32, iterations=60, horizon=30, target_accuracy=0.85, eval_seeds=4, eval_students=4,
                 cache_dir=cache, run_dir="", show_progress=False, tensorboard=False)
    learned = train(cfg).final["eval_steps_mean"]
    assert learned < tb.evaluate(cfg.settings, tb.plain_sgd(), 4, 4)["steps_mean"]
    assert learned < tb.evaluate(cfg.settings, tb.random_directives(0), 4, 4)["steps_mean"]
