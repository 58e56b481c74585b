"""The teacher's policy-gradient loop, its config and CLI, and the teaching baselines."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math

import pytest
import torch

from commchannels.cli import main as cli_main
from commchannels.config import MAX_SEED, add_config_arguments, config_from_args, config_from_dict, config_to_dict
from commchannels.data import load_digits
from commchannels.envs.teaching import TeachingCore, TeachingSettings
from commchannels.registry import REGISTRY
from commchannels.run_folder import RunOptions, replace_run
from commchannels.runs import load_checkpoint
from commchannels.training import teaching_baselines as tb
from commchannels.training.teacher import Config, summarize, train

FAST_ENV = {"horizon": 8, "updates_per_step": 5, "target_accuracy": 1.0, "reward": "gain"}
FAST = {"n_envs": 16, "lr": 0.03, "eval_seeds": 3, "eval_students": 4}
QUIET = {"progress": False, "tensorboard": False}


def tiny(cache: str, run_dir: str | None = None, env: dict | None = None, **overrides) -> Config:
    """The smallest teaching run (the registry's debug settings): a fraction of a second."""
    env = {**REGISTRY["teaching_v0"].debug_kwargs, "cache_dir": cache, **(env or {})}
    return Config(env=env, **{"n_envs": 4, "iterations": 4, "eval_seeds": 2, "eval_students": 2, **overrides},
                  run=RunOptions(run_dir=run_dir, **QUIET))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---------------------------------------------------------------------------- config
@pytest.mark.parametrize(("overrides", "message"), [
    ({"env": {"reward": "fast"}}, "reward='fast' is not allowed"),
    ({"env": {"target_accuracy": math.nan}}, "target_accuracy=nan is not allowed"),
    ({"env": {"horizon": 0}}, "horizon=0 is out of range"),
    ({"env": {"horizn": 4}}, r"unknown TeachingSettings options \['env.horizn'\]"),
    ({"n_envs": 0}, "n_envs=0 is out of range"),
    ({"lr": math.inf}, "lr=inf is not allowed"),
    ({"lr": math.nan}, "lr=nan is not allowed"),
    ({"lr": 0.0}, "lr=0.0 is out of range"),
    ({"entropy_coef": -math.inf}, "entropy_coef=-inf is not allowed"),
    ({"shaping": math.nan}, "shaping=nan is not allowed"),
    ({"iterations": 2.0}, "iterations=2.0 is not an integer"),
    ({"iterations": tb.MAX_TRAINING_BATCHES + 1}, "iterations=10000001 is out of range"),
    ({"eval_seeds": True}, "eval_seeds=True is not an integer"),
    ({"seed": -1}, "seed=-1 is out of range"),
    ({"seed": MAX_SEED + 1}, f"seed={MAX_SEED + 1} is out of range"),
    ({"threads": 100_000}, "threads=100000 is out of range"),
])
def test_config_rejects_bad_values_naming_the_option(overrides, message):
    with pytest.raises(ValueError, match=message):
        Config(**overrides)


def test_config_nests_every_environment_option_once(capsys, cache):
    cfg = Config(env=TeachingSettings(horizon=12, hidden=(8, 4), temperatures=(2.0, 4.0), cache_dir=cache),
                 iterations=7, seed=MAX_SEED, run=RunOptions(run_dir="somewhere", checkpoint_every=2))
    assert config_from_dict(Config, json.loads(json.dumps(config_to_dict(cfg)))) == cfg  # tuples come back
    assert Config(env={"horizon": 12}).env == TeachingSettings(horizon=12)
    assert not hasattr(Config(), "settings") and not hasattr(Config(), "horizon")  # each option owned once
    assert Config().run.run_dir is None  # like every trainer: nothing on disk unless asked

    parser = argparse.ArgumentParser()
    add_config_arguments(parser, Config)
    parsed = config_from_args(Config, parser.parse_args(
        ["--iterations", "6", "--horizon", "4", "--env.hidden", "8", "8", "--lr-scales", "1", "2",
         "--divergence-penalty", "none", "--run-dir", "X", "--checkpoint-every", "2", "--student-speaks"]))
    assert parsed.iterations == 6 and parsed.run == RunOptions(run_dir="X", checkpoint_every=2)
    assert parsed.env == TeachingSettings(horizon=4, hidden=(8, 8), lr_scales=(1.0, 2.0), student_speaks=True)

    with pytest.raises(SystemExit) as exit_info:
        cli_main(["train", "teacher", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for f in dataclasses.fields(TeachingSettings):  # all 21, not the 10 the old config copied
        assert f"--{f.name.replace('_', '-')}" in out, f.name


def test_memory_estimate_refuses_impossible_sizes_at_once():
    # the old loop allocated n_envs students until the process died
    # refused when the config is built, so a sweep refuses such a grid before running any point
    with pytest.raises(ValueError, match=r"n_envs=100000000.* needs about [0-9.]+ GiB of memory"):
        Config(n_envs=10**8)
    with pytest.raises(ValueError, match=r"eval_students=100000000.* needs about"):
        Config(eval_students=10**8)
    assert 1e5 < Config(n_envs=64).memory_estimate(load_digits()) < 2**30  # the defaults fit anywhere


def test_training_seeds_never_reach_held_out_students():
    assert [tb.training_seed(0, i) for i in range(3)] == [0, 1, 2]  # the first runs' seeds are kept
    assert tb.training_seed(7, 999) == 7999
    seeds = [tb.training_seed(s, i) for s in (0, 1, 999, 1000, 10**6, MAX_SEED)
             for i in (0, 1, 999, 1000, tb.MAX_TRAINING_BATCHES - 1)]
    assert len(set(seeds)) == len(seeds)  # one-to-one
    held_out = range(tb.EVAL_SEED_BASE, tb.EVAL_SEED_BASE + tb.MAX_EVAL_SEEDS)
    assert not any(s in held_out for s in seeds)  # seed * 1000 + i gave 1_000_000 for seed 1000
    assert all(0 <= s < 2**64 for s in seeds)  # torch.Generator.manual_seed's range
    with pytest.raises(ValueError, match="index=-1 is out of range"):
        tb.training_seed(0, -1)


# ---------------------------------------------------------------------------- training
def test_small_teacher_beats_random_directives(cache, tmp_path):
    cfg = Config(env={**FAST_ENV, "cache_dir": cache}, **FAST, iterations=10, seed=0,
                 run=RunOptions(run_dir=str(tmp_path / "run"), **QUIET))
    result = train(cfg)
    learned = result.extras["evaluations"]["learned teacher"]["final_accuracy"]
    rand = tb.evaluate(cfg.env, tb.random_directives(0), 3, 4)["final_accuracy"]
    assert learned > rand + 0.2
    run = tmp_path / "run"
    for name in ("run.json", "config.json", "metrics.jsonl", "metrics.csv", "checkpoints/latest.pt", "teacher.pt",
                 "steps_to_target.png", "evaluation.json", "final.json"):
        assert (run / name).is_file(), name
    model = load_checkpoint(run / "teacher.pt")
    assert model["config"]["iterations"] == 10 and model["config"]["env"]["horizon"] == 8
    assert torch.equal(model["teacher"]["head.weight"], result.extras["teacher"].state_dict()["head.weight"])
    assert load_checkpoint(run / "checkpoints/latest.pt")["step"] == 10
    assert json.loads((run / "evaluation.json").read_text())["final"]["eval_reached"] >= 0
    assert json.loads((run / "final.json").read_text()) == result.final
    assert [row["step"] for row in result.history] == list(range(1, 11))
    assert "learned teacher" in summarize(result)


def test_training_is_deterministic_and_speaking_mode_runs(cache, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = tiny(cache, iterations=2)
    first, second = train(cfg), train(cfg)
    assert first.history == second.history and first.final == second.final
    assert first.run_dir is None and list(tmp_path.iterdir()) == []  # no run_dir: nothing on disk
    speaking = train(tiny(cache, env={"student_speaks": True, "report_len": 2, "report_vocab": 4}, iterations=2))
    assert speaking.extras["speaker"] is not None and len(speaking.history) == 2


def test_crash_in_final_evaluation_keeps_the_trained_teacher(cache, tmp_path, monkeypatch):
    cfg = tiny(cache, str(tmp_path / "crash"))
    reference = train(tiny(cache, str(tmp_path / "reference")))

    def broken(*args, **kwargs):
        raise RuntimeError("evaluation failed")
    with monkeypatch.context() as patch:
        patch.setattr(tb, "evaluate", broken)
        with pytest.raises(RuntimeError, match="evaluation failed"):
            train(cfg)
    state = load_checkpoint(tmp_path / "crash" / "checkpoints" / "latest.pt")
    assert state["step"] == cfg.iterations
    trained = reference.extras["teacher"].state_dict()
    assert all(torch.equal(state["trainer"]["teacher"][k], v) for k, v in trained.items())
    resumed = train(replace_run(cfg, resume=True))  # only the evaluation runs again
    assert resumed.final == reference.final and resumed.history == reference.history


def test_baselines_directives(cache):
    core = TeachingCore(TeachingSettings(cache_dir=cache, horizon=12), n_envs=3, seed=0)
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
    small = TeachingSettings(cache_dir=cache, horizon=2, updates_per_step=1)
    lr_level, target = tb.best_fixed_directive(small, n_envs=2)
    assert 0 <= lr_level < len(small.lr_scales) and target in (0, 1)
    assert any("best fixed directive" in name for name in tb.baselines(small, tuned_directive=True))
    mean, half = tb.mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0 and 2.4 < half < 2.5  # t(0.975, 2) * 1 / sqrt(3)


@pytest.mark.slow
def test_teacher_needs_fewer_steps_than_plain_sgd_and_random(cache):
    cfg = Config(env={"horizon": 30, "target_accuracy": 0.85, "cache_dir": cache}, n_envs=32, iterations=60,
                 eval_seeds=4, eval_students=4, run=RunOptions(**QUIET))
    learned = train(cfg).final["eval_steps_mean"]
    assert learned < tb.evaluate(cfg.env, tb.plain_sgd(), 4, 4)["steps_mean"]
    assert learned < tb.evaluate(cfg.env, tb.random_directives(0), 4, 4)["steps_mean"]


def test_cli_trains_with_flattened_options_and_reports_errors(cache, tmp_path, capsys):
    run = tmp_path / "run"
    debug = REGISTRY["teaching_v0"].debug_kwargs
    flags = []
    for key, value in debug.items():
        flags += [f"--{key.replace('_', '-')}", *map(str, value if isinstance(value, tuple) else (value,))]
    argv = ["train", "teacher", *flags, "--cache-dir", cache, "--n-envs", "2", "--iterations", "2",
            "--eval-seeds", "2", "--eval-students", "2", "--run-dir", str(run), "--no-progress", "--no-tensorboard"]
    assert cli_main(argv) == 0
    assert "learned teacher" in capsys.readouterr().out
    config = json.loads((run / "config.json").read_text())
    assert config["env"]["horizon"] == debug["horizon"] and config["run"]["run_dir"] == str(run)
    try:
        code = cli_main(["train", "teacher", "--n-envs", str(10**8)])
    except SystemExit as exit_info:  # argparse's exit, or a returned status
        code = exit_info.code
    assert code == 2 and "GiB of memory" in capsys.readouterr().err
