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
and scores them with ``game.rewards``. A run folder holds config.json, metrics.jsonl/csv,
tb/, learning_curve.png, checkpoint.pt and language.pt (the final greedy messages of every
train and test object, read by ``commchannels analyse``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from commchannels.agents.channels import CELLS, METHODS, GumbelChannel
from commchannels.agents.senders import make_agents
from commchannels.config import check_choice, check_range, config_to_dict, option
from commchannels.envs.referential.game import MODES, ReferentialGame
from commchannels.envs.referential.games import GAMES
from commchannels.runs import RunLogger, plot_curves, progress, save_checkpoint
from commchannels.seeding import seed_everything, torch_generator
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

DESCRIPTION = ("Emergent language in referential games: a sender and a receiver learn to "
               "communicate (REINFORCE, Gumbel-Softmax, straight-through or continuous channel).")


@dataclass(frozen=True)
class Config:
    """Options of ``commchannels train referential`` (validated on construction)."""

    objects: str = option("attributes", "object set", choices=tuple(GAMES))
    n_attributes: int = option(4, "attributes per object (attributes game)")
    n_values: int = option(8, "values per attribute (attributes game)")
    holdout_fraction: float = option(0.1, "share of attribute combinations held out for testing")
    n_candidates: int = option(5, "objects shown to the receiver (target + distractors)")
    vocab_size: int = option(16, "message symbols, token 0 = EOS")
    max_len: int = option(4, "maximum message length")
    mode: str = option("discrimination", "receiver task", choices=MODES)
    sender_sees_candidates: bool = option(False, "the sender also sees the distractors")
    length_cost: float = option(0.0, "sender reward charged per token sent (EOS included)")
    method: str = option("gumbel", "how the sender learns to send", choices=METHODS)
    cell: str = option("gru", "recurrent cell of the sender head and receiver encoder", choices=CELLS)
    sender_hidden: int = option(128, "sender hidden size")
    receiver_hidden: int = option(128, "receiver hidden size")
    embed: int = option(32, "symbol embedding size")
    lr: float = option(2e-3, "Adam learning rate")
    batch_size: int = option(128, "games per update")
    steps: int = option(20_000, "maximum updates")
    max_seconds: float | None = option(None, "wall-clock budget in seconds (None: no limit)")
    temperature: float = option(1.0, "initial Gumbel-Softmax temperature")
    temperature_decay: float = option(1.0, "temperature multiplier per update (1: no annealing)")
    temperature_min: float = option(0.5, "lowest temperature reached by annealing")
    sender_entropy: float = option(0.01, "entropy bonus of the sender's symbol distributions (every "
                                  "discrete method)")
    receiver_entropy: float = option(0.001, "REINFORCE entropy bonus of the receiver")
    baseline_decay: float = option(0.99, "decay of the running-mean reward baselines (REINFORCE)")
    receiver_update: str = option("loss", "how the receiver learns with --method reinforce: "
                                  "REINFORCE on sampled guesses (reinforce), or descending its "
                                  "cross-entropy (loss)", choices=RECEIVER_UPDATES)
    distractors: str = option("batch", "training distractors in discrimination (differentiable "
                              "methods, or reinforce with --receiver-update loss): the game's "
                              "candidates, or every candidate in the batch (evaluation always "
                              "plays the game)", choices=DISTRACTORS)
    eval_every: int = option(50, "updates between accuracy evaluations")
    eval_games: int = option(1024, "games per evaluation and split")
    metrics_every: int = option(500, "updates between language metrics (topsim, posdis, bosdis)")
    targets: tuple[float, ...] = option((0.9, 0.95, 0.99), "train accuracies whose first time is recorded")
    stop_accuracy: float | None = option(None, "stop once train accuracy reaches this (None: never)")
    threads: int = option(1, "torch CPU threads during training (1 is fastest for these small "
                          "networks, above all on a shared machine; 0: leave torch's setting)")
    seed: int = option(0, "random seed")
    run_dir: str | None = option(None, "run folder (None: write nothing)")

    def __post_init__(self) -> None:
        check_choice("objects", self.objects, GAMES)
        check_choice("method", self.method, METHODS)
        check_choice("cell", self.cell, CELLS)
        check_choice("receiver_update", self.receiver_update, RECEIVER_UPDATES)
        check_choice("distractors", self.distractors, DISTRACTORS)
        check_range("threads", self.threads, 0)
        for name in ("sender_hidden", "receiver_hidden", "embed", "batch_size", "steps",
                     "eval_every", "eval_games", "metrics_every"):
            check_range(name, getattr(self, name), 1)
        check_range("lr", self.lr, 1e-12)
        check_range("temperature", self.temperature, 1e-6)
        check_range("temperature_min", self.temperature_min, 1e-6)
        check_range("temperature_decay", self.temperature_decay, 1e-6, 1.0)
        check_range("sender_entropy", self.sender_entropy, 0.0)
        check_range("receiver_entropy", self.receiver_entropy, 0.0)
        check_range("baseline_decay", self.baseline_decay, 0.0, 1.0)
        if self.max_seconds is not None:
            check_range("max_seconds", self.max_seconds, 0.0)
        if self.stop_accuracy is not None:
            check_range("stop_accuracy", self.stop_accuracy, 0.0, 1.0)
        for target in self.targets:
            check_range("targets", target, 0.0, 1.0)
        game = self.make_game()  # the game's own checks (vocab_size, n_candidates, ...) run now
        game.pool("train")
        game.pool("test")

    def make_game(self) -> ReferentialGame:
        """The game these options describe."""
        rules = dict(n_candidates=self.n_candidates, vocab_size=self.vocab_size, max_len=self.max_len,
                     mode=self.mode, sender_sees_candidates=self.sender_sees_candidates,
                     length_cost=self.length_cost)
        if self.objects == "attributes":
            return GAMES["attributes"](n_attributes=self.n_attributes, n_values=self.n_values,
                                       holdout_fraction=self.holdout_fraction, **rules)
        return GAMES[self.objects](**rules)


def _target_key(kind: str, target: float) -> str:
    return f"{kind}_to_{target * 100:g}"


def train(cfg: Config) -> Result:
    """Train a sender and a receiver on ``cfg``'s game; see the module docstring."""
    # ---------------------------------------------------------------- seeding
    seed_everything(cfg.seed)  # network initialisation and the agents' sampling
    game_gen = torch_generator(cfg.seed)  # training games
    eval_gen = torch_generator(cfg.seed + 1)  # evaluation games (never shared with training)

    # ---------------------------------------------------------------- setup
    game = cfg.make_game()
    sender, receiver = make_agents(game, cfg.method, cfg.cell, cfg.sender_hidden,
                                   cfg.receiver_hidden, cfg.embed, cfg.temperature)
    optimizer = torch.optim.Adam([*sender.parameters(), *receiver.parameters()], lr=cfg.lr)
    baselines = {"sender": RunningMean(cfg.baseline_decay), "receiver": RunningMean(cfg.baseline_decay)}
    logger = RunLogger(cfg.run_dir, cfg)
    reached: dict[str, float] = {}
    start = time.perf_counter()
    bar = progress(total=cfg.steps, desc=f"referential {cfg.method}")
    threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)  # restored below: no global state left changed
    # Near-one-hot softmaxes produce denormal floats, which made later updates ~10x slower.
    torch.set_flush_denormal(True)
    step, stats, row = 0, {}, {}

    # ---------------------------------------------------------------- loop
    try:
        while step < cfg.steps:
            step += 1
            if isinstance(sender.channel, GumbelChannel):
                sender.channel.temperature = max(cfg.temperature_min,
                                                 cfg.temperature * cfg.temperature_decay ** (step - 1))
            # sample
            batch = game.sample(cfg.batch_size, game_gen, "train")
            # forward + loss
            if cfg.method == "reinforce":
                loss, stats = reinforce_loss(game, sender, receiver, batch, cfg, baselines)
            else:
                loss, stats = differentiable_loss(game, sender, receiver, batch, cfg.method,
                                                  cfg.sender_entropy, cfg.distractors)
            # update
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            # log
            seconds = time.perf_counter() - start
            out_of_time = cfg.max_seconds is not None and seconds >= cfg.max_seconds
            if step % cfg.eval_every and step < cfg.steps and not out_of_time:
                continue
            train_eval = evaluate(game, sender, receiver, cfg.method, eval_gen, "train", cfg.eval_games)
            test_eval = evaluate(game, sender, receiver, cfg.method, eval_gen, "test", cfg.eval_games)
            row = {"samples": step * cfg.batch_size, "seconds": seconds,
                   "train_acc": train_eval["acc"], "test_acc": test_eval["acc"],
                   "mean_length": train_eval["mean_length"], **stats}
            if step % cfg.metrics_every == 0:
                row.update(language_metrics(train_eval))
            for target in cfg.targets:
                if row["train_acc"] >= target and _target_key("samples", target) not in reached:
                    reached[_target_key("samples", target)] = row["samples"]
                    reached[_target_key("seconds", target)] = seconds
                    reached[_target_key("steps", target)] = step
            logger.log(step, row)
            bar.update(step - bar.n)
            bar.set_postfix(train_acc=f"{row['train_acc']:.3f}", test_acc=f"{row['test_acc']:.3f}")
            if out_of_time or (cfg.stop_accuracy is not None and row["train_acc"] >= cfg.stop_accuracy):
                break
    finally:
        bar.close()
        torch.set_num_threads(threads)
        torch.set_flush_denormal(False)

    # ---------------------------------------------------------------- save
    train_eval = evaluate(game, sender, receiver, cfg.method, eval_gen, "train", cfg.eval_games)
    final = {**row, **language_metrics(train_eval), "steps": step, "seconds": time.perf_counter() - start,
             **reached}
    final = {k: None if isinstance(v, float) and v != v else v for k, v in final.items()}  # NaN: undefined
    language = {split: pool_language(game, sender, split, eval_gen) for split in ("train", "test")}
    if logger.run_dir is not None:
        run_dir = logger.run_dir
        save_checkpoint(run_dir / "checkpoint.pt", {
            "sender": sender.state_dict(), "receiver": receiver.state_dict(),
            "optimizer": optimizer.state_dict(), "config": config_to_dict(cfg), "step": step})
        save_checkpoint(run_dir / "language.pt", {  # read by `commchannels analyse`
            "meanings": torch.cat([language["train"][0], language["test"][0]]),
            "messages": torch.cat([language["train"][1], language["test"][1]]),
            "attribute_sizes": list(game.attribute_sizes), "vocab_size": game.vocab_size,
            "split": ["train"] * len(language["train"][0]) + ["test"] * len(language["test"][0]),
        })
        rows = [r for r in logger.rows if "train_acc" in r]
        plot_curves(run_dir / "learning_curve.png",
                    {split: ([r["samples"] for r in rows], [r[f"{split}_acc"] for r in rows])
                     for split in ("train", "test")},
                    xlabel="games seen", ylabel="accuracy (greedy)",
                    title=f"{cfg.objects} {cfg.mode}, {cfg.method}")
        logger.write_json("final.json", final)
    logger.close()
    return Result(final=final, history=logger.rows, run_dir=logger.run_dir,
                  extras={"sender": sender, "receiver": receiver, "game": game, "language": language,
                          "config": cfg})


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
