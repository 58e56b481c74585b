"""The teacher's policy-gradient loop, its config and CLI, its policies (memory, the blind
teacher), the split between training and evaluation families, and evidence of customisation."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math

import pytest
import torch

from commchannels.agents.teachers import MultiDiscretePolicy, RecurrentPolicy, RunningNorm, make_policy
from commchannels.cli import main as cli_main
from commchannels.config import MAX_SEED, add_config_arguments, config_from_args, config_from_dict, config_to_dict
from commchannels.data import load_digits
from commchannels.envs.teaching import TeachingCore, TeachingSettings
from commchannels.registry import REGISTRY
from commchannels.run_folder import RunOptions, replace_run
from commchannels.runs import load_checkpoint
from commchannels.training import teaching_baselines as tb
from commchannels.training.protocol import run_trainer
from commchannels.training.teacher import Config, GreedyTeacher, TeacherTrainer, summarize, train

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
    ({"memory": "lstm"}, r"memory='lstm' is not allowed; expected one of \['gru', 'none'\]"),
    ({"observe": "eyes"}, r"observe='eyes' is not allowed; expected one of \['full', 'progress'\]"),
    ({"eval_split": "test"}, r"eval_split='test' is not allowed; expected one of \['train', 'held-out'\]"),
    ({"value_coef": -1.0}, "value_coef=-1.0 is out of range"),
    ({"env": {"split": "held-out"}}, "env.split='held-out' is not allowed: the teacher trains on the training"),
    ({"observe": "progress", "env": {"student_speaks": True}},
     "observe='progress' with env.student_speaks=True is not allowed: a blind teacher reads no reports"),
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
    # 20 iterations: the policies standardise their inputs, so an early greedy policy follows the
    # observations more than a constant would (10 were enough for the raw inputs)
    cfg = Config(env={**FAST_ENV, "cache_dir": cache}, **FAST, iterations=20, seed=0,
                 run=RunOptions(run_dir=str(tmp_path / "run"), **QUIET))
    result = train(cfg)
    learned = result.extras["evaluations"]["learned teacher"]["final_accuracy"]
    rand = tb.evaluate(cfg.env, tb.random_directives(0), 3, 4)["final_accuracy"]
    assert learned > rand + 0.2
    run = tmp_path / "run"
    for name in ("run.json", "config.json", "metrics.jsonl", "metrics.csv", "checkpoints/latest.pt", "teacher.pt",
                 "steps_to_target.png", "directives.png", "evaluation.json", "final.json"):
        assert (run / name).is_file(), name
    model = load_checkpoint(run / "teacher.pt")
    assert model["config"]["iterations"] == 20 and model["config"]["env"]["horizon"] == 8
    assert torch.equal(model["teacher"]["head.weight"], result.extras["teacher"].state_dict()["head.weight"])
    assert load_checkpoint(run / "checkpoints/latest.pt")["step"] == 20
    evaluation = json.loads((run / "evaluation.json").read_text())
    assert evaluation["final"]["eval_reached"] >= 0 and evaluation["final"]["eval_split"] == "held-out"
    traces = evaluation["directive_traces"]  # mlp-fixed: one family, the same in both splits
    assert list(traces) == [f.name for f in cfg.eval_env.families] and traces == result.extras["directive_traces"]
    for trace in traces.values():
        steps = len(trace["running"])
        assert 1 <= steps <= cfg.env.horizon and trace["running"][0] == cfg.eval_students
        assert all(len(trace[k]) == steps for k in ("bucket", "lr_level", "target_level"))
        assert len(trace["students"]) == cfg.eval_students and all(len(d) == 3 for s in trace["students"] for d in s)
    assert json.loads((run / "final.json").read_text()) == result.final
    assert [row["step"] for row in result.history] == list(range(1, 21))
    assert "learned teacher" in summarize(result)


def test_training_is_deterministic_and_speaking_mode_runs(cache, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = tiny(cache, iterations=2)
    first, second = train(cfg), train(cfg)
    assert first.history == second.history and first.final == second.final
    assert first.run_dir is None and list(tmp_path.iterdir()) == []  # no run_dir: nothing on disk
    speaking = train(tiny(cache, env={"student_speaks": True, "report_len": 2, "report_vocab": 4}, iterations=2))
    assert speaking.extras["speaker"] is not None and len(speaking.history) == 2
    # the speaking pair is scored on held-out students: the trained speaker sends their reports
    assert speaking.final["eval_steps_mean"] > 0 and "learned teacher" in speaking.extras["evaluations"]
    with pytest.raises(ValueError, match="only with a policy that also sends their reports"):
        tb.evaluate(TeachingSettings(**{**REGISTRY["teaching_v0"].debug_kwargs, "cache_dir": cache,
                                        "student_speaks": True}), tb.plain_sgd(), 1, 2)


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


# ---------------------------------------------------------------------------- policies and memory
def test_policies_carry_an_explicit_state_reset_at_each_episode():
    obs = torch.rand(5, 3)
    mlp = MultiDiscretePolicy(3, (2, 4), (8,))
    assert mlp.initial_state(5).shape == (5, 0) and make_policy("none", 3, (2, 4)).state_size == 0
    gru = make_policy("gru", 3, (2, 4), (8,))
    assert isinstance(gru, RecurrentPolicy)
    state = gru.initial_state(5)
    assert state.shape == (5, 8 + 2 + 4) and not state.any()
    step = gru.sample(obs, state)
    assert step.log_prob.shape == step.entropy.shape == step.value.shape == (5,)
    # the state remembers the directive just taken: the GRU's memory, then one one-hot per component
    memory, first, second = step.state.split([8, 2, 4], dim=1)
    assert memory.abs().sum() > 0
    assert torch.equal(first.argmax(1), step.actions[:, 0]) and torch.equal(second.argmax(1), step.actions[:, 1])
    assert first.sum(1).eq(1).all() and second.sum(1).eq(1).all()
    greedy, after = gru.act(obs, state)
    assert torch.equal(gru.act(obs, state)[0], greedy) and not torch.equal(after, state)
    with pytest.raises(ValueError, match=r"state of shape \(5, 3\) is invalid; expected \(5, 14\)"):
        gru.sample(obs, torch.zeros(5, 3))
    with pytest.raises(ValueError, match=r"observations of shape \(5, 2\) are invalid; expected \(B, 3\)"):
        gru.act(torch.rand(5, 2))
    with pytest.raises(ValueError, match="memory='lstm' is not allowed"):
        make_policy("lstm", 3, (2,))


def test_inputs_are_standardised_by_the_statistics_of_training_samples_only():
    norm = RunningNorm(2)
    x = torch.tensor([[0.0, 0.5], [1.0, 0.5], [2.0, 0.5], [3.0, 0.5]])
    assert torch.allclose(norm(x), x)  # no statistics yet: the identity
    norm.update(x[:1])
    norm.update(x[1:])  # two batches give the statistics of all four rows
    assert torch.allclose(norm.mean, torch.tensor([1.5, 0.5])) and torch.allclose(norm.var, torch.tensor([1.25, 0.0]))
    assert torch.allclose(norm(x)[:, 0], (x[:, 0] - 1.5) / 1.25**0.5, atol=1e-5) and norm(x)[:, 1].eq(0).all()
    policy = RecurrentPolicy(2, (3,), (4,))
    policy.act(x)  # greedy evaluation leaves the statistics alone
    assert policy.norm.count == 0
    policy.sample(x)
    assert policy.norm.count == 4 and "norm.mean" in policy.state_dict()  # saved with the policy


def test_greedy_teacher_needs_a_reset_per_episode(cache):
    core = TeachingCore(TeachingSettings(**REGISTRY["teaching_v0"].debug_kwargs, cache_dir=cache), n_envs=2, seed=0)
    policy = RecurrentPolicy(core.teacher_obs_dim, core.action_nvec, (8,))
    teacher = GreedyTeacher(policy)
    core.reset(0)
    with pytest.raises(ValueError, match=r"GreedyTeacher.reset\(core\) must be called"):
        teacher(core)
    first = tb.run_episode(core, teacher, seed=3)  # run_episode resets the teacher after the core
    assert not torch.equal(teacher.state, policy.initial_state(2))
    assert all(torch.equal(a, b) for a, b in zip(first.values(), tb.run_episode(core, teacher, seed=3).values()))


def test_the_teachers_memory_starts_afresh_each_episode(cache):
    # no target: every episode (training, evaluation, traces) runs the whole horizon
    cfg = tiny(cache, env={"target_accuracy": None}, iterations=3)
    trainer = TeacherTrainer(cfg)
    memories: list[torch.Tensor] = []
    trainer.teacher.cell.register_forward_pre_hook(lambda module, args: memories.append(args[1].clone()))
    run_trainer(trainer)
    horizon = cfg.env.horizon
    assert len(memories) % horizon == 0 and len(memories) >= (cfg.iterations + cfg.eval_seeds) * horizon
    assert all(not m.any() for m in memories[::horizon])  # each episode's first step
    assert all(m.abs().sum() > 0 for i, m in enumerate(memories) if i % horizon)


@pytest.mark.parametrize("observe", ["full", "progress"])
def test_the_blind_teacher_sees_only_progress(cache, observe):
    cfg = tiny(cache, env={"students": "mlp-arch", "target_accuracy": None}, observe=observe, iterations=2)
    trainer = TeacherTrainer(cfg)
    seen: list[torch.Tensor] = []
    trainer.teacher.norm.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
    result = run_trainer(trainer)
    assert seen and all(x.shape[1] == trainer.teacher.obs_dim for x in seen)
    traces = result.extras["directive_traces"]
    if observe == "full":
        assert trainer.teacher.obs_dim == trainer.core.teacher_obs_dim > 1
        return
    assert trainer.teacher.obs_dim == 1
    steps = torch.cat(seen) * cfg.env.horizon
    assert torch.allclose(steps, steps.round()) and steps.min() >= 0 and steps.max() < cfg.env.horizon  # t / horizon
    # blind and greedy, it gives every student, of every family, the same directives
    assert len({json.dumps(s) for trace in traces.values() for s in trace["students"]}) == 1


# ---------------------------------------------------------------------------- families
def test_training_draws_the_training_families_and_evaluation_the_held_out_ones(cache):
    cfg = tiny(cache, env={"students": "mlp-arch"}, iterations=2)
    train_names = [f.name for f in cfg.env.families]
    held_out = [f.name for f in cfg.eval_env.families]
    assert cfg.eval_env.split == "held-out" and not set(train_names) & set(held_out)
    trainer = TeacherTrainer(cfg)
    assert [f.name for f in trainer.core.families] == train_names  # every training episode draws from these
    result = run_trainer(trainer)
    assert set(result.extras["evaluations"]["learned teacher"]["per_family_steps"]) <= set(held_out)
    assert list(result.extras["directive_traces"]) == held_out and result.final["eval_split"] == "held-out"
    on_train = train(dataclasses.replace(cfg, eval_split="train"))
    assert list(on_train.extras["directive_traces"]) == train_names


def test_baselines_are_tuned_on_the_training_families_with_the_teachers_budget(cache, monkeypatch):
    calls = []

    def spy(settings, **kwargs):
        calls.append((settings, kwargs))
        return {"plain SGD": tb.plain_sgd()}
    monkeypatch.setattr(tb, "baselines", spy)
    result = train(tiny(cache, env={"students": "mlp-arch"}, compare_baselines=True, n_envs=3, iterations=2))
    [(settings, kwargs)] = calls
    assert settings.split == "train" and kwargs["budget"] == 3 * 2
    assert set(result.extras["evaluations"]) == {"learned teacher", "plain SGD"}


class TwoFamilies(TeacherTrainer):
    """Trains on two forced families of the mlp-arch preset, half the students each: the same
    network trained by SGD (best learning rate 0.3 here) and by Adam (best 0.03, and 0.3 ruins it)."""

    pair = ("sgd relu 32", "adam relu 32")

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg)
        names = [f.name for f in self.core.families]
        forced = torch.tensor([names.index(name) for name in self.pair]).repeat(cfg.n_envs // 2)
        reset = self.core.reset
        self.core.reset = lambda seed=None, family=None: reset(seed, family=forced)


def test_a_trained_teacher_customises_its_directives_to_the_family(cache):
    # the two students look alike at first: the teacher must read how each responds to a directive
    env = {**REGISTRY["teaching_v0"].debug_kwargs, "students": "mlp-arch", "cache_dir": cache, "horizon": 3,
           "updates_per_step": 10, "reward": "gain", "target_accuracy": None, "max_val": 300,
           "lr_scales": (0.3, 3.0)}
    cfg = Config(env=env, n_envs=64, iterations=30, lr=0.02, entropy_coef=0.1, eval_split="train", eval_seeds=1,
                 eval_students=4, seed=0, run=RunOptions(**QUIET))
    traces = run_trainer(TwoFamilies(cfg)).extras["directive_traces"]
    sgd, adam = (traces[name] for name in TwoFamilies.pair)
    assert sgd["students"] != adam["students"]  # not a constant schedule
    assert sum(sgd["lr_level"]) > sum(adam["lr_level"])  # and the SGD student gets the higher learning rate
