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
learning_curve.png, final.json, agents.pt, interaction.pt (the final evaluation, an
:class:`~commchannels.training.interaction.Interaction`: every train and test object is the
target of one greedy game; read by ``commchannels analyse``) and language.pt (its meanings and
messages as plain tensors).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from commchannels.agents.cells import CELLS, MAX_LAYERS
from commchannels.agents.channels import METHODS, GumbelChannel
from commchannels.agents.receivers import Receiver
from commchannels.agents.senders import Sender, agent_options, check_agent_options, make_agents
from commchannels.config import MAX_SEED, Options, check_memory, option
from commchannels.envs.referential.game import SPLITS, ReferentialGame
from commchannels.registry import game_settings_for
from commchannels.run_folder import RunFolder, RunOptions
from commchannels.runs import plot_curves, save_checkpoint
from commchannels.seeding import seed_everything, torch_generator
from commchannels.training.interaction import INTERACTION_FILE, LANGUAGE_FILE, Interaction, language_file
from commchannels.training.protocol import Trainer, run_trainer
from commchannels.training.referential_steps import (
    BASELINES,
    DISTRACTORS,
    RECEIVER_UPDATES,
    RunningMean,
    differentiable_loss,
    evaluate,
    imitation_loss,
    language_metrics,
    on_device,
    play_pool,
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
    cell: str = option("gru", "cell of the sender head and receiver reader (GRU, LSTM, or causal Transformer "
                       "sender with a Transformer-encoder receiver)", choices=CELLS)
    layers: int = option(1, "layers of the sender head and of the receiver reader", low=1, high=MAX_LAYERS)
    heads: int = option(4, "attention heads of --cell transformer (divides sender_hidden and receiver_hidden)",
                        low=1, high=1024)
    sender_hidden: int = option(128, "sender hidden size", low=1, high=65536)
    receiver_hidden: int = option(128, "receiver hidden size", low=1, high=65536)
    embed: int = option(32, "symbol embedding size", low=1, high=65536)
    sender_memoryless: bool = option(False, "each symbol from the object and its position only, not the symbols "
                                            "before it (Kottur et al. 2017's memoryless speaker)")
    sender_attention: bool = option(False, "each message position reads a learned mixture of the target's "
                                           "attributes (attention over attributes; attribute-value games): a "
                                           "positional, compositional language becomes the easy one to learn")
    receiver_additive: bool = option(False, "the receiver sums one learned vector per (position, symbol) "
                                            "instead of running a cell: it reads each position on its own")
    lr: float = option(2e-3, "Adam learning rate", gt=0.0, high=10.0)
    batch_size: int = option(128, "games per update", low=1, high=10**7)
    grad_clip: float | None = option(None, "clip the global gradient norm of each update to this (None: no "
                                           "clipping)", gt=0.0)
    steps: int = option(20_000, "maximum updates", low=1, high=10**12)
    max_seconds: float | None = option(None, "wall-clock budget in seconds (None: no limit)", gt=0.0)
    temperature: float = option(1.0, "initial Gumbel-Softmax temperature", low=1e-6, high=1e6)
    temperature_decay: float = option(1.0, "temperature multiplier per update (1: no annealing)", low=1e-6,
                                      high=1.0)
    temperature_min: float = option(0.5, "lowest temperature reached by annealing, and the learned "
                                    "temperature's floor", low=1e-6, high=1e6)
    temperature_learnable: bool = option(False, "learn the Gumbel-Softmax temperature (a scalar per sender, "
                                         "temperature_min + softplus(w), starting at temperature) instead "
                                         "of annealing it")
    sender_entropy: float | None = option(None, "entropy bonus of the sender's symbol distributions (None: "
                                               "0.05 for reinforce, 0.01 for the relaxed channels)", low=0.0, high=1e6)
    receiver_entropy: float = option(0.001, "REINFORCE entropy bonus of the receiver", low=0.0, high=1e6)
    baseline: str = option("mean", "REINFORCE reward baseline: exponential running mean (ema, decay "
                           "baseline_decay), mean over all updates (mean, EGG's), or the mean of the other games "
                           "of the batch (batch)", choices=BASELINES)
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
    final_objects: int = option(100_000, "objects per split the final evaluation plays (saved for "
                                "`commchannels analyse`): every object of a smaller pool, else a seeded sample",
                                low=1, high=10**9)
    metrics_every: int = option(500, "updates between language metrics (topsim, posdis, bosdis)", low=1,
                                high=10**12)
    targets: tuple[float, ...] = option((0.9, 0.95, 0.99), "train accuracies whose first time is recorded",
                                        low=0.0, high=1.0)
    stop_accuracy: float | None = option(None, "stop once train accuracy reaches this (None: never)", low=0.0,
                                         high=1.0)
    population: int = option(1, "senders and receivers trained together, a random pair per update (population "
                                "training: a shared language must be learnable by many listeners)", low=1, high=64)
    receiver_reset_every: int = option(0, "re-initialise the receivers every this many updates (Li & Bowling "
                                          "2019, ease of teaching; 0: never)", low=0)
    generations: int = option(1, "iterated learning (Kirby et al. 2014; Ren et al. 2020): split the updates into "
                                 "this many generations; each new one starts from fresh agents whose sender first "
                                 "imitates the previous sender's language", low=1, high=10_000)
    imitation_steps: int = option(200, "updates a new generation's sender spends imitating the previous one (the "
                                       "transmission bottleneck: too few to learn an unstructured language)", low=1,
                                  high=10**9)
    device: str = option("cpu", "torch device of the agents: cpu, cuda, cuda:N, or auto (cuda when available); "
                                "games are drawn on the CPU and moved there")
    threads: int = option(1, THREADS_HELP, low=0)
    seed: int = option(0, "random seed", low=0, high=MAX_SEED)
    run: RunOptions = option(RunOptions(), "run folder, checkpoints and logging")

    def validate(self) -> None:
        check_threads(self.threads)
        self.torch_device  # noqa: B018 - checks the device now
        if self.generations > 1 and self.method == "continuous":
            raise ValueError(f"generations={self.generations} needs a discrete channel to imitate; expected "
                             "method reinforce, gumbel or st-gumbel (or generations=1)")
        if self.generations > self.steps:
            raise ValueError(f"generations={self.generations} is more than steps={self.steps}; expected at "
                             "least one update per generation")
        check_agent_options(self)
        game = self.make_game()
        game.pool("train")  # the pools' checks (n_candidates against distinct objects) run now
        game.pool("test")
        check_memory(f"batch_size={self.batch_size}, eval_games={self.eval_games} with this game and these "
                     "network sizes", self.memory_estimate(game))

    @property
    def torch_device(self) -> torch.device:
        """The agents' device (``auto``: CUDA when available)."""
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            device = torch.device(self.device)
        except RuntimeError:
            raise ValueError(f"device={self.device!r} is not a torch device; expected cpu, cuda, cuda:N or "
                             "auto") from None
        cuda_devices = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if device.type == "cuda" and (device.index or 0) >= cuda_devices:
            raise ValueError(f"device={self.device!r} is not available on this machine ({cuda_devices} CUDA "
                             "devices); expected cpu or auto")
        if device.type not in ("cpu", "cuda"):
            raise ValueError(f"device={self.device!r} is not supported; expected cpu, cuda, cuda:N or auto")
        return device

    @property
    def sender_entropy_coef(self) -> float:
        """The sender's entropy bonus: REINFORCE explores by sampling and needs more of it (0.05
        reached 90% in 86k-99k games on 4 of 5 seeds against 90k-163k with 0.01; README ablation)."""
        if self.sender_entropy is not None:
            return self.sender_entropy
        return 0.05 if self.method == "reinforce" else 0.01

    def make_game(self) -> ReferentialGame:
        """The game these options describe (built by the game's own constructor)."""
        return self.env.make_game()

    def memory_estimate(self, game: ReferentialGame) -> float:
        """Rough peak bytes of one update or evaluation: activations and their gradients per game,
        the batch-distractor score matrix, the objects shown, and the parameters with Adam's state."""
        positions = game.max_len + 1
        hidden = max(self.sender_hidden, self.receiver_hidden)
        per_game = positions * (game.vocab_size + 4 * hidden + self.embed) * 4 * 8 * self.layers
        if self.cell == "transformer":  # the receiver encodes every prefix of the message
            per_game *= positions
        objects = game.n_candidates * max(1, int(torch.tensor(game.object_shape).prod())) * 4 * 4
        games = max(self.batch_size, self.eval_games)
        scores = self.batch_size**2 * positions * 4 * 3 if self.distractors == "batch" else 0
        params = (game.vocab_size * (self.embed + hidden) + 8 * hidden * hidden * self.layers) * 4 * 4
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
        if cfg.generations > 1:  # generation boundaries are fractions of steps: the budget cannot grow
            self.resumable = tuple(option for option in self.resumable if option != "steps")
        # ------------------------------------------------------------ seeding
        seed_everything(cfg.seed)  # network initialisation and the agents' sampling
        self.game_gen = torch_generator(cfg.seed)  # training games
        self.eval_gen = torch_generator(cfg.seed + 1)  # evaluation games (never shared with training)
        # ------------------------------------------------------------ setup
        self.game = cfg.make_game()
        # a population of senders and receivers (1 each by default); every update pairs one of each
        self.senders, self.receivers = (list(agents) for agents in zip(*(self.new_agents()
                                                                         for _ in range(cfg.population))))
        self.device = cfg.torch_device
        self.sender, self.receiver = self.senders[0], self.receivers[0]  # evaluated, saved and analysed
        self.pair_gen = torch_generator(cfg.seed + 2)  # which sender meets which receiver
        self.parameters = [p for agent in (*self.senders, *self.receivers) for p in agent.parameters()]
        self.optimizer = torch.optim.Adam(self.parameters, lr=cfg.lr)
        self.baselines = {agent: RunningMean(cfg.baseline_decay, cfg.baseline) for agent in ("sender", "receiver")}
        self.reached: dict[str, float] = {}
        self.row: dict[str, Any] = {}
        self.elapsed = 0.0  # training seconds before this process (a resumed run continues the clock)
        self.start = time.perf_counter()
        self._stop = False
        self.imitation: float | None = None  # last imitation loss of iterated learning
        self._threads = torch_threads(cfg.threads)
        # Near-one-hot softmaxes produce denormal floats, which made later updates ~10x slower.
        torch.set_flush_denormal(True)

    def new_agents(self) -> tuple[Sender, Receiver]:
        """A freshly initialised sender and receiver (drawn from the global RNG, which checkpoints keep)."""
        cfg = self.cfg
        sender, receiver = make_agents(self.game, cfg.method, cfg.cell, cfg.sender_hidden,
                                       cfg.receiver_hidden, cfg.embed, cfg.temperature, **agent_options(cfg))
        return sender.to(cfg.torch_device), receiver.to(cfg.torch_device)

    def reset_receivers(self) -> None:
        """Re-initialise every receiver and forget its optimiser state (Li & Bowling 2019): a language
        that is easy to teach to a new listener, such as a compositional one, is favoured."""
        for receiver in self.receivers:
            receiver.load_state_dict(self.new_agents()[1].state_dict())
            for parameter in receiver.parameters():
                self.optimizer.state.pop(parameter, None)

    def new_generation(self) -> float:
        """Iterated learning: fresh senders and receivers; each new sender imitates its predecessor's
        greedy messages for ``imitation_steps`` updates. Returns the last imitation loss."""
        cfg = self.cfg
        teachers = [copy.deepcopy(sender).eval() for sender in self.senders]
        for agents, fresh in ((self.senders, 0), (self.receivers, 1)):
            for agent in agents:
                agent.load_state_dict(self.new_agents()[fresh].state_dict())
                for parameter in agent.parameters():
                    self.optimizer.state.pop(parameter, None)
        loss = torch.zeros(())
        for _ in range(cfg.imitation_steps):
            objects = self.game.sample(cfg.batch_size, self.game_gen, "train").sender_objects.to(self.device)
            self.optimizer.zero_grad(set_to_none=True)
            for teacher, student in zip(teachers, self.senders):
                with torch.no_grad():
                    tokens = teacher(objects, greedy=True).tokens
                loss = imitation_loss(self.game, student, objects, tokens)
                loss.backward()
            self.optimizer.step()
        return float(loss.detach())

    def seconds(self) -> float:
        return self.elapsed + time.perf_counter() - self.start

    def step(self, step: int) -> dict[str, Any] | None:
        cfg, game = self.cfg, self.game
        generation_steps = cfg.steps // cfg.generations
        if cfg.generations > 1 and step > 1 and (step - 1) % generation_steps == 0 and \
                (step - 1) // generation_steps < cfg.generations:
            self.imitation = self.new_generation()
        if cfg.receiver_reset_every and step > 1 and (step - 1) % cfg.receiver_reset_every == 0:
            self.reset_receivers()
        pair = torch.randint(cfg.population, (2,), generator=self.pair_gen).tolist() if cfg.population > 1 else (0, 0)
        sender, receiver = self.senders[pair[0]], self.receivers[pair[1]]
        if isinstance(sender.channel, GumbelChannel) and not cfg.temperature_learnable:
            sender.channel.temperature = max(cfg.temperature_min, cfg.temperature * cfg.temperature_decay ** (step - 1))
        # ------------------------------------------------------------ sample
        batch = on_device(game.sample(cfg.batch_size, self.game_gen, "train"), self.device)
        # ------------------------------------------------------------ forward + loss
        if cfg.method == "reinforce":
            loss, stats = reinforce_loss(game, sender, receiver, batch, cfg, self.baselines)
        else:
            loss, stats = differentiable_loss(game, sender, receiver, batch, cfg.method,
                                              cfg.sender_entropy_coef, cfg.distractors)
        # ------------------------------------------------------------ update
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.parameters, cfg.grad_clip)
        self.optimizer.step()
        # ------------------------------------------------------------ evaluate + log
        seconds = self.seconds()
        out_of_time = cfg.max_seconds is not None and seconds >= cfg.max_seconds
        if step % cfg.eval_every and step < cfg.steps and not out_of_time:
            return None
        train_eval, train_summary = evaluate(game, self.sender, self.receiver, cfg.method, self.eval_gen, "train",
                                             cfg.eval_games)
        _, test_summary = evaluate(game, self.sender, self.receiver, cfg.method, self.eval_gen, "test", cfg.eval_games)
        row = {"samples": step * cfg.batch_size, "seconds": seconds,
               "train_acc": train_summary["acc"], "test_acc": test_summary["acc"],
               "mean_length": train_summary["mean_length"], **stats}
        if self.imitation is not None:
            row["imitation_loss"] = self.imitation
        if step % cfg.metrics_every == 0:
            row.update(language_metrics(train_eval))
        for target in cfg.targets:
            if row["train_acc"] >= target and _target_key("samples", target) not in self.reached:
                self.reached[_target_key("samples", target)] = row["samples"]
                self.reached[_target_key("seconds", target)] = seconds
                self.reached[_target_key("steps", target)] = step
        self.row = row
        self._stop = self._ends(row, seconds)
        return row

    def _ends(self, row: dict[str, Any], seconds: float) -> bool:
        """Whether the run ends after ``row``: out of time, or the target accuracy reached."""
        cfg = self.cfg
        out_of_time = cfg.max_seconds is not None and seconds >= cfg.max_seconds
        return out_of_time or (cfg.stop_accuracy is not None and row.get("train_acc", -1.0) >= cfg.stop_accuracy)

    def should_stop(self) -> bool:
        return self._stop

    def progress_postfix(self, row: dict[str, Any]) -> dict[str, str]:
        return {"train_acc": f"{row['train_acc']:.3f}", "test_acc": f"{row['test_acc']:.3f}"}

    def state_dict(self) -> dict[str, Any]:
        return {"senders": [agent.state_dict() for agent in self.senders],
                "receivers": [agent.state_dict() for agent in self.receivers], "pair_gen": self.pair_gen.get_state(),
                "optimizer": self.optimizer.state_dict(), "game_gen": self.game_gen.get_state(),
                "eval_gen": self.eval_gen.get_state(),
                "baselines": {k: b.state_dict() for k, b in self.baselines.items()},
                "reached": dict(self.reached), "row": dict(self.row), "seconds": self.seconds(),
                "imitation": self.imitation}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for agents, key in ((self.senders, "senders"), (self.receivers, "receivers")):
            for agent, saved in zip(agents, state[key]):
                agent.load_state_dict(saved)
        self.pair_gen.set_state(state["pair_gen"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.game_gen.set_state(state["game_gen"])
        self.eval_gen.set_state(state["eval_gen"])
        for key, baseline in state["baselines"].items():
            self.baselines[key].load_state_dict(baseline)
        self.reached, self.row = dict(state["reached"]), dict(state["row"])
        self.elapsed, self.start = float(state["seconds"]), time.perf_counter()
        self.imitation = state["imitation"]
        # judged by the options now in force: a resume may grow max_seconds or stop_accuracy
        self._stop = bool(self.row) and self._ends(self.row, self.elapsed)

    def finish(self, folder: RunFolder, steps: int) -> tuple[dict[str, Any], dict[str, Any]]:
        cfg, game, sender, receiver = self.cfg, self.game, self.sender, self.receiver
        train_eval, _ = evaluate(game, sender, receiver, cfg.method, self.eval_gen, "train", cfg.eval_games)
        final = {**self.row, **language_metrics(train_eval), "steps": steps, "seconds": self.seconds(),
                 **self.reached}
        # the final evaluation: every train and test object (up to final_objects) is the target of one greedy game
        interaction = Interaction.concat([play_pool(game, sender, receiver, cfg.method, split, self.eval_gen,
                                                    limit=cfg.final_objects) for split in SPLITS])
        masks = {split: interaction.aux["split"] == i for i, split in enumerate(SPLITS)}
        language = {split: (interaction.meanings[mask], interaction.message[mask]) for split, mask in masks.items()}
        if folder.path is not None:
            save_checkpoint(folder.path / "agents.pt", {"sender": sender.state_dict(),
                                                        "receiver": receiver.state_dict()})
            interaction.save(folder.path / INTERACTION_FILE)  # read by `commchannels analyse`
            save_checkpoint(folder.path / LANGUAGE_FILE, language_file(interaction))  # the same language, plainly
            rows = [r for r in folder.logger.rows if "train_acc" in r]
            plot_curves(folder.path / "learning_curve.png",
                        {split: ([r["samples"] for r in rows], [r[f"{split}_acc"] for r in rows])
                         for split in ("train", "test")},
                        xlabel="games seen", ylabel="accuracy (greedy)",
                        title=f"{cfg.env_id}, {game.mode}, {cfg.method}")
        return final, {"sender": sender, "receiver": receiver, "game": game, "language": language,
                       "interaction": interaction, "config": cfg}

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
