"""The referential training loop: learning, determinism, validation, run folder, speed targets."""

import dataclasses
import json

import pytest
import torch

from commchannels.agents import make_agents
from commchannels.config import config_from_dict, config_to_dict
from commchannels.envs.referential import DigitsGame
from commchannels.runs import load_checkpoint
from commchannels.training.referential import Config, summarize, train
from commchannels.training.referential_steps import batch_distractor_losses

SMALL = dict(n_attributes=2, n_values=5, n_candidates=3, vocab_size=10, max_len=2, holdout_fraction=0.2,
             sender_hidden=32, receiver_hidden=32, embed=16, batch_size=64, eval_every=50,
             eval_games=256, metrics_every=100, lr=5e-3)
GAME_OPTIONS = {"n_attributes", "n_values", "holdout_fraction", "split_seed", "n_candidates", "vocab_size",
                "max_len", "mode", "sender_sees_candidates", "length_cost"}


def small(**overrides) -> Config:
    """A small config; game options go to ``env``, ``run_dir`` to ``run`` (digits drops the
    attribute options)."""
    values = {**SMALL, **overrides}
    digits = values.pop("objects", None) == "digits"
    env = {k: values.pop(k) for k in list(values) if k in GAME_OPTIONS}
    if digits:
        env = {k: v for k, v in env.items() if k not in ("n_attributes", "n_values", "holdout_fraction")}
    run = {"run_dir": values.pop("run_dir", None), "progress": False}
    return Config(env_id="referential_digits_v0" if digits else "referential_v0", env=env, run=run, **values)


@pytest.mark.parametrize("overrides", [
    dict(method="gumbel"),
    dict(method="st-gumbel", cell="lstm"),
    dict(method="continuous"),
    dict(method="reinforce", receiver_update="reinforce", steps=300, sender_entropy=0.05,
         receiver_entropy=0.01),
    dict(method="reinforce"),
    dict(method="gumbel", mode="reconstruction", max_len=1, vocab_size=26),
    dict(method="gumbel", distractors="game"),
    dict(method="gumbel", sender_memoryless=True),
    dict(method="gumbel", sender_attention=True, receiver_additive=True),
    dict(method="reinforce", sender_attention=True, mode="reconstruction", vocab_size=6),
], ids=["gumbel", "st-gumbel-lstm", "continuous", "reinforce-both", "reinforce", "reconstruction",
        "gumbel-game-distractors", "gumbel-memoryless", "gumbel-attention-additive", "reinforce-attention"])
def test_each_method_learns_above_chance(overrides):
    cfg = small(**{"steps": 200, **overrides})
    result = train(cfg)
    chance = 1 / 3 if cfg.env.mode == "discrimination" else 1 / 5
    assert result.final["train_acc"] > chance + 0.2, result.final
    assert {"topsim", "posdis", "bosdis", "entropy", "test_acc", "mean_length"} <= set(result.final)


def test_digits_and_sender_sees_candidates_run():
    result = train(small(objects="digits", n_candidates=4, steps=20, eval_every=10, eval_games=64,
                         sender_sees_candidates=True, length_cost=0.01, method="reinforce"))
    assert 0.0 <= result.final["train_acc"] <= 1.0
    assert result.extras["language"]["train"][0].shape[1] == 1  # the meaning is the digit's class


def test_batch_distractors_mask_copies_of_the_target_class():
    game = DigitsGame(n_candidates=3, max_len=2, vocab_size=5)  # many images per class
    sender, receiver = make_agents(game, "gumbel", sender_hidden=8, receiver_hidden=8, embed=4)
    batch = game.sample(64, torch.Generator().manual_seed(0))
    symbols = sender(batch.sender_objects).symbols
    losses = batch_distractor_losses(game, receiver, batch, symbols)
    assert losses.shape == (64, 2) and bool(torch.isfinite(losses).all())
    # masking copies can only make the task easier than scoring all 192 candidates
    assert float(losses.detach().mean()) < float(torch.log(torch.tensor(192.0)))
    losses.mean().backward()
    assert sender.channel.head.weight.grad is not None


def test_same_seed_same_metrics_and_other_seed_differs():
    def metrics(seed: int) -> list[dict]:
        # scramble global RNGs: the loop must reseed everything it uses
        torch.manual_seed(1234 + seed)
        cfg = small(method="gumbel", steps=60, eval_every=20, metrics_every=20, seed=seed)
        return [{k: v for k, v in row.items() if k != "seconds"} for row in train(cfg).history]

    first = metrics(3)
    assert first == metrics(3)
    assert first != metrics(4)


def test_reinforce_is_deterministic():
    cfg = small(method="reinforce", receiver_update="reinforce", steps=40, eval_every=20)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(train(cfg).history) == strip(train(cfg).history)


@pytest.mark.parametrize("overrides, message", [
    (dict(method="ppo"), r"method='ppo' is not allowed; expected one of \['reinforce'"),
    (dict(vocab_size=1), "vocab_size=1 is out of range"),
    (dict(n_candidates=20), "n_candidates=20 is more than"),
    (dict(n_candidates=3.5), "n_candidates=3.5 is not an integer"),
    (dict(n_candidates="3"), "n_candidates='3' is not an integer"),
    (dict(lr=float("nan")), "lr=nan"),
    (dict(temperature=float("inf")), "temperature=inf"),
    (dict(seed=2**70), "seed=1180591620717411303424 is out of range"),
    (dict(threads=100_000), "threads=100000 is out of range"),
    (dict(batch_size=2_000_000, eval_games=2_000_000), "needs about .* GiB of memory"),
    (dict(stop_accuracy=float("nan")), "stop_accuracy=nan"),
    (dict(steps=True), "steps=True is not an integer"),
    (dict(cell="rnn"), "cell='rnn'"),
    (dict(mode="guess"), "mode='guess'"),
    (dict(temperature=0.0), "temperature=0.0"),
    (dict(eval_every=0), "eval_every=0"),
    (dict(receiver_update="sgd"), "receiver_update='sgd'"),
    (dict(targets=(0.9, 1.5)), "targets=1.5"),
    (dict(objects="digits", n_candidates=11), "n_candidates=11"),
])
def test_bad_configs_fail_at_once_naming_the_option(overrides, message):
    with pytest.raises(ValueError, match=message):
        small(**overrides)


def test_config_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        small().lr = 1.0


def test_unknown_env_id_and_non_referential_env_are_refused():
    with pytest.raises(ValueError, match="env_id='nope' is not registered"):
        Config(env_id="nope")
    with pytest.raises(ValueError, match="env_id='teaching_v0' is not a referential game"):
        Config(env_id="teaching_v0")
    with pytest.raises(ValueError, match=r"unknown AttributeValueGameSettings options \['env.n_colours'\]"):
        Config(env={"n_colours": 3})


def test_config_round_trips_through_json():
    cfg = small(method="reinforce", run_dir="somewhere")
    assert config_from_dict(Config, json.loads(json.dumps(config_to_dict(cfg)))) == cfg


def test_run_folder_contents(tmp_path):
    run_dir = tmp_path / "run"
    result = train(small(method="gumbel", steps=40, eval_every=20, run_dir=str(run_dir)))
    assert result.run_dir == run_dir
    config = json.loads((run_dir / "config.json").read_text())
    assert config["method"] == "gumbel" and config["env"]["n_values"] == 5
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [20, 40]
    assert (run_dir / "metrics.csv").read_text().startswith("step,")
    assert list((run_dir / "tb").glob("events.out.tfevents.*"))
    assert (run_dir / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    checkpoint = load_checkpoint(run_dir / "checkpoints" / "latest.pt")  # weights_only=True
    assert checkpoint["run_id"] == json.loads((run_dir / "run.json").read_text())["run_id"] == result.extras["run_id"]
    assert checkpoint["step"] == 40
    agents = load_checkpoint(run_dir / "agents.pt")
    sender, receiver = result.extras["sender"], result.extras["receiver"]
    sender.load_state_dict(agents["sender"])
    receiver.load_state_dict(agents["receiver"])
    assert json.loads((run_dir / "final.json").read_text())["steps"] == 40
    language = torch.load(run_dir / "language.pt", weights_only=True)
    n_train, n_test = 20, 5  # 25 objects, 1/5 held out
    assert language["meanings"].shape == (n_train + n_test, 2)
    assert language["messages"].shape == (n_train + n_test, 2)
    assert language["messages"].dtype == torch.long and language["meanings"].dtype == torch.long
    assert language["split"] == ["train"] * n_train + ["test"] * n_test
    assert language["attribute_sizes"] == [5, 5] and language["vocab_size"] == 10
    assert "train acc" in summarize(result)


def test_max_seconds_and_stop_accuracy_end_early():
    result = train(small(method="gumbel", steps=10_000, max_seconds=0.5, eval_every=10))
    assert result.final["steps"] < 10_000
    result = train(small(method="gumbel", steps=2_000, stop_accuracy=0.5, eval_every=10))
    assert result.final["train_acc"] >= 0.5 and result.final["steps"] < 2_000


@pytest.mark.slow
def test_gumbel_reaches_99_percent_on_the_standard_game():
    result = train(Config(method="gumbel", stop_accuracy=0.99, max_seconds=240))
    assert result.final["train_acc"] >= 0.99, summarize(result)


@pytest.mark.slow
def test_reinforce_reaches_95_percent_on_the_standard_game():
    result = train(Config(method="reinforce", stop_accuracy=0.95, max_seconds=600))
    assert result.final["train_acc"] >= 0.95, summarize(result)


@pytest.mark.slow
def test_reinforce_for_both_agents_reaches_95_percent_on_the_standard_game():
    # the benchmark's ``reinforce-both`` variant; about 280 s on a busy 2-core machine
    cfg = Config(method="reinforce", receiver_update="reinforce", lr=1e-3, sender_entropy=0.03,
                 receiver_entropy=0.01, baseline="ema", stop_accuracy=0.95, max_seconds=900)
    result = train(cfg)
    assert result.final["train_acc"] >= 0.95, summarize(result)


def test_population_training_pairs_every_sender_and_receiver():
    from commchannels.training.referential import ReferentialTrainer

    trainer = ReferentialTrainer(small(method="gumbel", population=3))
    initial = [[p.detach().clone() for p in agent.parameters()] for agent in (*trainer.senders, *trainer.receivers)]
    for step in range(1, 61):
        trainer.step(step)
    for before, agent in zip(initial, (*trainer.senders, *trainer.receivers)):
        assert any(not torch.equal(a, b) for a, b in zip(before, agent.parameters()))  # each one learnt
    result = train(small(method="gumbel", steps=150, eval_every=75, population=3))
    assert result.final["train_acc"] > 1 / 3 + 0.2, result.final


def test_receiver_resets_reinitialise_the_receivers(monkeypatch):
    from commchannels.training import referential

    resets = []
    original = referential.ReferentialTrainer.reset_receivers
    monkeypatch.setattr(referential.ReferentialTrainer, "reset_receivers",
                        lambda self: (resets.append(1), original(self))[1])
    result = train(small(method="gumbel", steps=100, eval_every=50, receiver_reset_every=30))
    assert len(resets) == 3  # before updates 31, 61 and 91
    assert 0.0 <= result.final["train_acc"] <= 1.0


def test_population_and_resets_resume_to_the_same_metrics(tmp_path):
    from commchannels.run_folder import replace_run

    def cfg(steps, run_dir):
        values = dict(method="reinforce", steps=steps, eval_every=10, population=2, receiver_reset_every=15)
        return small(**values, run_dir=str(run_dir))

    straight = train(cfg(40, tmp_path / "a"))
    train(cfg(20, tmp_path / "b"))
    resumed = train(replace_run(cfg(40, tmp_path / "b"), resume=True))
    strip = lambda rows: [{k: v for k, v in r.items() if "seconds" not in k} for r in rows]  # noqa: E731
    assert strip(resumed.history) == strip(straight.history)


def test_iterated_learning_imitates_the_previous_generation(monkeypatch):
    from commchannels.training import referential

    losses = []
    original = referential.ReferentialTrainer.new_generation
    monkeypatch.setattr(referential.ReferentialTrainer, "new_generation",
                        lambda self: (losses.append(original(self)), losses[-1])[1])
    result = train(small(method="gumbel", steps=150, eval_every=50, generations=3, imitation_steps=60))
    assert len(losses) == 2  # before updates 51 and 101
    assert all(loss < 1.0 for loss in losses), losses  # the new sender learnt its predecessor's messages
    assert "imitation_loss" in result.history[-1]
    assert result.final["train_acc"] > 1 / 3 + 0.2, result.final


def test_attention_agents_train_in_populations_and_generations(tmp_path):
    # the imitation of iterated learning goes through the per-position channel's forced logits
    result = train(small(method="gumbel", steps=60, eval_every=30, population=2, generations=2, imitation_steps=20,
                         sender_attention=True, receiver_additive=True, run_dir=str(tmp_path / "run")))
    assert result.history[-1]["imitation_loss"] < 1.0  # learnt its predecessor's messages (chance: log 10)
    agents = load_checkpoint(tmp_path / "run" / "agents.pt")  # weights_only=True
    assert "body.mixing" in agents["sender"] and "encoder.reader.weight" in agents["receiver"]


def test_forced_logits_score_the_senders_own_greedy_messages():
    from commchannels.training.referential_steps import imitation_loss

    game = small().make_game()
    sender, _ = make_agents(game, "reinforce", sender_hidden=16, receiver_hidden=16, embed=8)
    objects = game.sample(32, torch.Generator().manual_seed(0)).sender_objects
    tokens = sender(objects, greedy=True).tokens
    logits = sender.channel.forced_logits(sender.body(objects), tokens)
    assert torch.equal(logits.argmax(-1), tokens)  # teacher forcing on its own argmax replays it
    assert float(imitation_loss(game, sender, objects, tokens).detach()) > 0.0


@pytest.mark.parametrize("overrides, message", [
    (dict(method="continuous", generations=2), "generations=2 needs a discrete channel"),
    (dict(generations=500, steps=100), "generations=500 is more than steps=100"),
    (dict(population=0), "population=0 is out of range"),
])
def test_compositionality_options_are_checked(overrides, message):
    with pytest.raises(ValueError, match=message):
        small(**overrides)


def test_device_option():
    assert small(device="cpu").torch_device == torch.device("cpu")
    assert small(device="auto").torch_device.type in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device='cuda' is not available on this machine"):
            small(device="cuda")
    with pytest.raises(ValueError, match="device='tpu9' is not a torch device"):
        small(device="tpu9")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_trains_on_cuda():
    result = train(small(method="reinforce", device="cuda", steps=100))
    assert result.final["train_acc"] > 1 / 3
    assert next(result.extras["sender"].parameters()).device.type == "cuda"


def test_gradient_clipping_bounds_the_update():
    result = train(small(method="gumbel", steps=60, grad_clip=0.5))
    assert result.final["train_acc"] > 1 / 3
    with pytest.raises(ValueError, match=r"grad_clip=0.0 is out of range"):
        small(grad_clip=0.0)


def test_resume_after_an_early_stop_runs_no_extra_step(tmp_path):
    from commchannels.run_folder import replace_run

    cfg = small(method="gumbel", steps=100, eval_every=5, stop_accuracy=0.0, run_dir=str(tmp_path / "run"))
    assert train(cfg).final["steps"] == 5
    assert train(replace_run(cfg, resume=True)).final["steps"] == 5  # e.g. after a crash in finish()
    grown = dataclasses.replace(replace_run(cfg, resume=True), stop_accuracy=None, steps=12)
    assert train(grown).final["steps"] == 12  # the grown budget is judged by the options now in force


def test_iterated_learning_refuses_a_grown_budget_on_resume(tmp_path):
    from commchannels.run_folder import replace_run

    cfg = small(method="gumbel", steps=20, eval_every=10, generations=2, imitation_steps=5,
                run_dir=str(tmp_path / "run"))
    train(cfg)
    with pytest.raises(ValueError, match=r"these options differ from the saved run: \['steps'\]"):
        train(dataclasses.replace(replace_run(cfg, resume=True), steps=40))
