"""Emergent language in referential games: a sender and a receiver learn to communicate.

``commchannels train referential --method gumbel`` trains both agents on batches of games
drawn from the game's functional API (``game.sample`` / ``game.rewards``, the same rules as the
PettingZoo envs). Methods (``commchannels.agents.channels``):

* ``reinforce``: sampled tokens; the sender learns by REINFORCE (Williams 1992) with a
  running-mean baseline and an entropy bonus, the length cost being part of its reward. The
  receiver either descends its cross-entropy, the sender's reward then being minus that loss
  (``--receiver-update loss``, the default, as EGG's deterministic receiver), or also learns by
  REINFORCE on a sampled guess rewarded by ``game.rewards`` (``--receiver-update reinforce``,
  slower: about 0.9 train accuracy after 150 s on the standard game).
* ``gumbel`` / ``st-gumbel``: relaxed (or straight-through) one-hots; the loss is the
  expectation over where the message stops (EGG's ``SenderReceiverRnnGS``).
* ``continuous``: real vectors of fixed length, the bandwidth upper bound.

In discrimination, the cross-entropies are by default taken over every candidate of the batch
(``--distractors batch``), not only the game's: two objects sharing a message then cost
something at almost every update instead of in the rare games that show both, which makes
learning several times faster per game (``--distractors game`` keeps the game's candidates).

Evaluation always plays greedy discrete messages (the continuous channel reads its vectors)
and scores them with ``game.rewards``.

The game is any registered referential environment (``--env-id``; a game in a file of your own
is registered with ``--env-modules FILE``), and its options are the game constructor's own
(``cfg.env``, flattened on the command line: ``--n-attributes 6`` or ``--env.n-attributes 6``).
The loop runs under the trainer protocol (:mod:`commchannels.training.protocol`): a run folder
holds run.json, config.json, metrics.jsonl/csv, tb/, checkpoints/latest.pt (``--resume``),
learning_curve.png, final.json, agents.pt and language.pt (the final greedy messages of every
train and test object, read by ``commchannels analyse``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from commchannels.agents.channels import CELLS, METHODS, GumbelChannel
from commchannels.agents.senders import make_agents
from commchannels.config import MAX_SEED, Options, check_memory, option
from commchannels.envs.referential.game import ReferentialGame
from commchannels.registry import game_settings_for
from commchannels.run_folder import RunFolder, RunOptions
from commchannels.runs import plot_curves, save_checkpoint
from commchannels.seeding import seed_everything, torch_generator
from commchannels.training.protocol import Trainer, run_trainer
from commchannels.training.referential_steps import (
    DISTRACTORS,
    RECEIVER_UPDATES,
    RunningMean,
    differentiable_loss,
    evaluate,
    language_metrics,
    pool_language,
    reinforce_loss,
)
from commchannels.training.result import Result
from commchannels.training.threads import THREADS_HELP, check_threads, torch_threads

DESCRIPTION = ("Emergent language in referential games: a sender and a receiver learn to "
               "communicate (REINFORCE, Gumbel-Softmax, straight-through or continuous channel).")


@dataclass(frozen=True)
class Config(Options):
    """Options of ``commchannels train referential`` (validated on construction)."""

    env_modules: tuple[str, ...] = option((), "Python files to import first: they register games of your own")
    env_id: str = option("referential_v0", "the referential game to play (commchannels envs lists them)")
    env: Any = option(None, "the game's options (its constructor's keyword arguments)",
                      nested=lambda cfg: game_settings_for(cfg.env_id, cfg.env_modules))
    method: str = option("gumbel", "how the sender learns to send", choices=METHODS)
    cell: str = option("gru", "recurrent cell of the sender head and receiver encoder", choices=CELLS)
    sender_hidden: int = option(128, "sender hidden size", low=1, high=65536)
    receiver_hidden: int = option(128, "receiver hidden size", low=1, high=65536)
    embed: int = option(32, "symbol embedding size", low=1, high=65536)
    lr: float = option(2e-3, "Adam learning rate", gt=0.0, high=10.0)
    batch_size: int = option(128, "games per update", low=1, high=10**7)
    steps: int = option(20_000, "maximum updates", low=1, high=10**12)
    max_seconds: float | None = option(None, "wall-clock budget in seconds (None: no limit)", gt=0.0)
    temperature: float = option(1.0, "initial Gumbel-Softmax temperature", low=1e-6, high=1e6)
    temperature_decay: float = option(1.0, "temperature multiplier per update (1: no annealing)", low=1e-6,
                                      high=1.0)
    temperature_min: float = option(0.5, "lowest temperature reached by annealing", low=1e-6, high=1e6)
    sender_entropy: float = option(0.01, "entropy bonus of the sender's symbol distributions (every "
                                  "discrete method)", low=0.0, high=1e6)
    receiver_entropy: float = option(0.001, "REINFORCE entropy bonus of the receiver", low=0.0, high=1e6)
    baseline_decay: float = option(0.99, "decay of the running-mean reward baselines (REINFORCE)", low=0.0,
                                   high=1.0)
    receiver_update: str = option("loss", "how the receiver learns with --method reinforce: "
                                  "REINFORCE on sampled guesses (reinforce), or descending its "
                                  "cross-entropy (loss)", choices=RECEIVER_UPDATES)
    distractors: str = option("batch", "training distractors in discrimination (differentiable "
                              "methods, or reinforce with --receiver-update loss): the game's "
                              "candidates, or every candidate in the batch (evaluation always "
                              "plays the game)", choices=DISTRACTORS)
    eval_every: int = option(50, "updates between accuracy evaluations", low=1, high=10**12)
    eval_games: int = option(1024, "games per evaluation and split", low=1, high=10**7)
    metrics_every: int = option(500, "updates between language metrics (topsim, posdis, bosdis)", low=1,
                                high=10**12)
    targets: tuple[float, ...] = option((0.9, 0.95, 0.99), "train accuracies whose first time is recorded",
                                        low=0.0, high=1.0)
    stop_accuracy: float | None = option(None, "stop once train accuracy reaches this (None: never)", low=0.0,
                                         high=1.0)
    threads: int = option(1, THREADS_HELP, low=0)
    seed: int = option(0, "random seed", low=0, high=MAX_SEED)
    run: RunOptions = option(RunOptions(), "run folder, checkpoints and logging")

    def validate(self) -> None:
        check_threads(self.threads)
        game = self.make_game()
        game.pool("train")  # the pools' checks (n_candidates against distinct objects) run now
        game.pool("test")
        check_memory(f"batch_size={self.batch_size}, eval_games={self.eval_games} with this game and these "
                     "network sizes", self.memory_estimate(game))

    def make_game(self) -> ReferentialGame:
        """The game these options describe (built by the game's own constructor)."""
        return self.env.make_game()

    def memory_estimate(self, game: ReferentialGame) -> float:
        """Rough peak bytes of one update or evaluation: activations and their gradients per game,
        the batch-distractor score matrix, the objects shown, and the parameters with Adam's state."""
        positions = game.max_len + 1
        hidden = max(self.sender_hidden, self.receiver_hidden)
        per_game = positions * (game.vocab_size + 4 * hidden + self.embed) * 4 * 8
        objects = game.n_candidates * max(1, int(torch.tensor(game.object_shape).prod())) * 4 * 4
        games = max(self.batch_size, self.eval_games)
        scores = self.batch_size**2 * positions * 4 * 3 if self.distractors == "batch" else 0
        params = (game.vocab_size * (self.embed + hidden) + 8 * hidden * hidden) * 4 * 4
        return games * (per_game + objects) + scores + params


def _target_key(kind: str, target: float) -> str:
    return f"{kind}_to_{target * 100:g}"


class ReferentialTrainer(Trainer):
    """A sender and a receiver trained on ``cfg``'s game; see the module docstring."""

    name = "referential"
    # a budget may grow on --resume; everything else must match the interrupted run
    resumable = ("steps", "max_seconds", "stop_accuracy", "threads")

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg)
        self.total_steps = cfg.steps
        # ------------------------------------------------------------ seeding
        seed_everything(cfg.seed)  # network initialisation and the agents' sampling
        self.game_gen = torch_generator(cfg.seed)  # training games
        self.eval_gen = torch_generator(cfg.seed + 1)  # evaluation games (never shared with training)
        # ------------------------------------------------------------ setup
        self.game = game = cfg.make_game()
        self.sender, self.receiver = make_agents(game, cfg.method, cfg.cell, cfg.sender_hidden,
                                                 cfg.receiver_hidden, cfg.embed, cfg.temperature)
        self.optimizer = torch.optim.Adam([*self.sender.parameters(), *self.receiver.parameters()], lr=cfg.lr)
        self.baselines = {"sender": RunningMean(cfg.baseline_decay), "receiver": RunningMean(cfg.baseline_decay)}
        self.reached: dict[str, float] = {}
        self.row: dict[str, Any] = {}
        self.elapsed = 0.0  # training seconds before this process (a resumed run continues the clock)
        self.start = time.perf_counter()
        self._stop = False
        self._threads = torch_threads(cfg.threads)
        # Near-one-hot softmaxes produce denormal floats, which made later updates ~10x slower.
        torch.set_flush_denormal(True)

    def seconds(self) -> float:
        return self.elapsed + time.perf_counter() - self.start

    def step(self, step: int) -> dict[str, Any] | None:
        cfg, game = self.cfg, self.game
        if isinstance(self.sender.channel, GumbelChannel):
            self.sender.channel.temperature = max(cfg.temperature_min,
                                                  cfg.temperature * cfg.temperature_decay ** (step - 1))
        # ------------------------------------------------------------ sample
        batch = game.sample(cfg.batch_size, self.game_gen, "train")
        # ------------------------------------------------------------ forward + loss
        if cfg.method == "reinforce":
            loss, stats = reinforce_loss(game, self.sender, self.receiver, batch, cfg, self.baselines)
        else:
            loss, stats = differentiable_loss(game, self.sender, self.receiver, batch, cfg.method,
                                              cfg.sender_entropy, cfg.distractors)
        # ------------------------------------------------------------ update
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        # ------------------------------------------------------------ evaluate + log
        seconds = self.seconds()
        out_of_time = cfg.max_seconds is not None and seconds >= cfg.max_seconds
        if step % cfg.eval_every and step < cfg.steps and not out_of_time:
            return None
        train_eval = evaluate(game, self.sender, self.receiver, cfg.method, self.eval_gen, "train", cfg.eval_games)
        test_eval = evaluate(game, self.sender, self.receiver, cfg.method, self.eval_gen, "test", cfg.eval_games)
        row = {"samples": step * cfg.batch_size, "seconds": seconds,
               "train_acc": train_eval["acc"], "test_acc": test_eval["acc"],
               "mean_length": train_eval["mean_length"], **stats}
        if step % cfg.metrics_every == 0:
            row.update(language_metrics(train_eval))
        for target in cfg.targets:
            if row["train_acc"] >= target and _target_key("samples", target) not in self.reached:
                self.reached[_target_key("samples", target)] = row["samples"]
                self.reached[_target_key("seconds", target)] = seconds
                self.reached[_target_key("steps", target)] = step
        self.row = row
        self._stop = out_of_time or (cfg.stop_accuracy is not None and row["train_acc"] >= cfg.stop_accuracy)
        return row

    def should_stop(self) -> bool:
        return self._stop

    def progress_postfix(self, row: dict[str, Any]) -> dict[str, str]:
        return {"train_acc": f"{row['train_acc']:.3f}", "test_acc": f"{row['test_acc']:.3f}"}

    def state_dict(self) -> dict[str, Any]:
        return {"sender": self.sender.state_dict(), "receiver": self.receiver.state_dict(),
                "optimizer": self.optimizer.state_dict(), "game_gen": self.game_gen.get_state(),
                "eval_gen": self.eval_gen.get_state(),
                "baselines": {k: b.value for k, b in self.baselines.items()},
                "reached": dict(self.reached), "row": dict(self.row), "seconds": self.seconds(),
                "stop": self._stop}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sender.load_state_dict(state["sender"])
        self.receiver.load_state_dict(state["receiver"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.game_gen.set_state(state["game_gen"])
        self.eval_gen.set_state(state["eval_gen"])
        for key, value in state["baselines"].items():
            self.baselines[key].value = value
        self.reached, self.row = dict(state["reached"]), dict(state["row"])
        self.elapsed, self.start = float(state["seconds"]), time.perf_counter()
        self._stop = bool(state["stop"])

    def finish(self, folder: RunFolder, steps: int) -> tuple[dict[str, Any], dict[str, Any]]:
        cfg, game, sender, receiver = self.cfg, self.game, self.sender, self.receiver
        train_eval = evaluate(game, sender, receiver, cfg.method, self.eval_gen, "train", cfg.eval_games)
        final = {**self.row, **language_metrics(train_eval), "steps": steps, "seconds": self.seconds(),
                 **self.reached}
        language = {split: pool_language(game, sender, split, self.eval_gen) for split in ("train", "test")}
        if folder.path is not None:
            save_checkpoint(folder.path / "agents.pt", {"sender": sender.state_dict(),
                                                        "receiver": receiver.state_dict()})
            save_checkpoint(folder.path / "language.pt", {  # read by `commchannels analyse`
                "meanings": torch.cat([language["train"][0], language["test"][0]]),
                "messages": torch.cat([language["train"][1], language["test"][1]]),
                "attribute_sizes": list(game.attribute_sizes), "vocab_size": game.vocab_size,
                "split": ["train"] * len(language["train"][0]) + ["test"] * len(language["test"][0]),
            })
            rows = [r for r in folder.logger.rows if "train_acc" in r]
            plot_curves(folder.path / "learning_curve.png",
                        {split: ([r["samples"] for r in rows], [r[f"{split}_acc"] for r in rows])
                         for split in ("train", "test")},
                        xlabel="games seen", ylabel="accuracy (greedy)",
                        title=f"{cfg.env_id}, {game.mode}, {cfg.method}")
        return final, {"sender": sender, "receiver": receiver, "game": game, "language": language, "config": cfg}

    def close(self) -> None:
        torch.set_num_threads(self._threads)  # no global state left changed
        torch.set_flush_denormal(False)


def train(cfg: Config) -> Result:
    """Train a sender and a receiver on ``cfg``'s game under the trainer protocol."""
    return run_trainer(ReferentialTrainer(cfg))


def summarize(result: Result) -> str:
    """A few lines for the terminal: accuracies, language metrics and time to the targets."""
    f = result.final

    def num(key: str, digits: int = 3) -> str:
        value = f.get(key)
        return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "-"

    lines = [f"steps {f.get('steps')}  games {f.get('samples')}  seconds {num('seconds', 1)}",
             f"train acc {num('train_acc')}  held-out acc {num('test_acc')}  "
             f"mean length {num('mean_length', 2)}",
             f"topsim {num('topsim')}  posdis {num('posdis')}  bosdis {num('bosdis')}  "
             f"entropy {num('entropy', 2)} bits"]
    for key in sorted(k for k in f if k.startswith("seconds_to_")):
        lines.append(f"train acc {key[len('seconds_to_'):]}% after {num(key, 1)} s "
                     f"({f[key.replace('seconds', 'samples')]} games)")
    if result.run_dir is not None:
        lines.append(f"run folder: {Path(result.run_dir)}")
    return "\n".join(lines)


def cli_nested(argv: list[str]) -> dict[str, type]:
    """The options class of ``--env`` for the command line in ``argv`` (its ``--env-id`` and
    ``--env-modules``), so that ``--help`` and parsing show the chosen game's own options."""
    import argparse

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--env-id", default="referential_v0")
    pre.add_argument("--env-modules", nargs="*", default=())
    known, _ = pre.parse_known_args(argv)
    return {"env": game_settings_for(known.env_id, tuple(known.env_modules))}
