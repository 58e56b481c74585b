"""BenchMARL on the small referential game: one algorithm through BenchMARL's ``Experiment``.

The task is ``commchannels.integrations.benchmarl.ReferentialTask`` (the batched TorchRL env,
groups ``sender`` and ``receiver``). BenchMARL evaluates greedily every ``--eval-every``
iterations on 500 games; this script prints that accuracy as it goes (with the training time,
evaluations excluded), then the final greedy accuracy on the training objects and on the
held-out ones. With one token of 8 symbols for 12 training objects no language wins more than
0.939 of the games, and held-out objects have no word (chance). With the defaults and
``--eval-every 10`` (seed 0, one thread on a busy 2-core machine) MAPPO first reached 0.9 after
190 iterations (195k games), 103 s of training; IPPO learns the same (one agent per group: its
critic sees what MAPPO's does). Needs the optional extra: ``pip install -e '.[benchmarl]'``, then
``pip install --no-deps benchmarl==1.5.2`` (it declares torchrl<0.12; it runs on 0.14 through the
module's shim).

    python examples/benchmarl_referential.py [--quick] [--algorithm ippo|mappo] [--iterations 250]

``benchmarks/rl_libraries.py`` reuses :func:`options` and :func:`build_experiment`, with an
:class:`AccuracyClock` ``budget`` that stops the run after that many training seconds.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings

import torch

# first: it aliases the torchrl name that benchmarl 1.5 imports
from commchannels.integrations.benchmarl import (
    ALGORITHMS,
    BudgetSpent,
    ReferentialTask,
    greedy_accuracy,
    make_experiment,
)
from commchannels.integrations.benchmarl import experiment_config as sized_config

# isort: split
from benchmarl.experiment import Experiment, ExperimentConfig
from benchmarl.experiment.callback import Callback

# holdout_fraction=0.25 keeps 4 of the 16 objects out of training (enough for a 3-candidate test split)
GAME = {"n_attributes": 2, "n_values": 4, "holdout_fraction": 0.25, "n_candidates": 3, "vocab_size": 8,
        "max_len": 1}
EVAL_GAMES = 500


class AccuracyClock(Callback):
    """Prints BenchMARL's greedy evaluation accuracy and records the training seconds (evaluation
    excluded) at which it first reached each of ``targets``. With a ``budget`` (training seconds)
    it raises :class:`BudgetSpent` after the training of the iteration that spent it."""

    def __init__(self, targets: tuple[float, ...], budget: float | None = None) -> None:
        super().__init__()
        self.reached: dict[float, float | None] = dict.fromkeys(targets)
        self.budget = budget
        self._last = self._trained = self._train_s = 0.0

    @property
    def train_s(self) -> float:
        """Training seconds up to the last evaluation (or to the stop)."""
        return self._train_s

    def on_setup(self) -> None:
        self._last = time.perf_counter()

    def on_train_end(self, training_td, group: str) -> None:
        self._trained = time.perf_counter()  # BenchMARL evaluates after training every group
        last_group = group == list(self.experiment.train_group_map)[-1]
        if last_group and self.budget is not None and self._train_s + self._trained - self._last >= self.budget:
            self._train_s += self._trained - self._last
            self._last = self._trained
            raise BudgetSpent(f"{self._train_s:.1f} s of training (budget {self.budget:g} s)")

    def record(self, accuracy: float) -> None:
        """Marks the targets that ``accuracy`` reaches at the current training seconds."""
        for target, seconds in self.reached.items():
            if seconds is None and accuracy >= target:
                self.reached[target] = self._train_s

    def on_evaluation_end(self, rollouts: list) -> None:
        # BenchMARL cut each rollout at its first game's end: the receiver's return is 1 or 0
        self._train_s += self._trained - self._last
        accuracy = float(torch.stack([r.get(("next", "receiver", "reward")).sum() for r in rollouts]).mean())
        frames = self.experiment.total_frames
        self.record(accuracy)
        print(f"iteration {self.experiment.n_iters_performed:3d}: {frames // 2:8d} games, "
              f"greedy accuracy {accuracy:.3f}, {self._train_s:6.1f} s training", flush=True)
        self._last = time.perf_counter()


def experiment_config(args: argparse.Namespace, folder: str) -> ExperimentConfig:
    """BenchMARL's defaults, resized for a tiny game on a CPU (with the defaults: 1024 games per
    iteration from 512 envs, 4 epochs of 4 minibatches, a higher learning rate)."""
    frames = 4 * args.envs  # max_len=1: a game is 2 steps, so 2 games per env per iteration
    return sized_config(folder, envs=args.envs, frames=frames, minibatches=args.minibatches, epochs=args.epochs,
                        lr=args.lr, max_iters=args.iterations, eval_every=args.eval_every, eval_games=EVAL_GAMES)


def options(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line's options (``argv``: e.g. ``["--quick", "--algorithm", "ippo"]``; None:
    ``sys.argv``), with ``--quick``'s sizes applied."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="three small iterations (smoke test)")
    parser.add_argument("--algorithm", choices=sorted(ALGORITHMS), default="mappo")
    parser.add_argument("--iterations", type=int, default=250, help="BenchMARL collection/training iterations")
    parser.add_argument("--envs", type=int, default=512, help="games stepped together while collecting")
    parser.add_argument("--epochs", type=int, default=4, help="passes over each collected batch")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--entropy", type=float, default=0.03, help="entropy bonus coefficient")
    parser.add_argument("--minibatches", type=int, default=4, help="minibatches per epoch")
    parser.add_argument("--eval-every", type=int, default=5, help="iterations between evaluations")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    if args.quick:
        args.iterations, args.envs, args.epochs, args.eval_every = 3, 64, 1, 1
    return args


def build_experiment(args: argparse.Namespace, folder: str, clock: AccuracyClock) -> Experiment:
    """BenchMARL's ``Experiment`` for ``args`` (see :func:`options`) on the small game, saving to
    ``folder``, with ``clock`` as its callback. Its task is ``experiment.task``."""
    warnings.filterwarnings("ignore", message=".*missing transforms required by the policy.*")
    task = ReferentialTask.REFERENTIAL_V0.get_task(GAME)
    return make_experiment(task, args.algorithm, experiment_config(args, folder), args.seed, entropy=args.entropy,
                           callbacks=[clock])


def main() -> None:
    args = options()
    torch.set_num_threads(args.threads)
    clock = AccuracyClock(targets=(0.5, 0.7, 0.9))
    print(f"game {GAME}; chance accuracy {1 / GAME['n_candidates']:.3f}; BenchMARL {args.algorithm}")
    with tempfile.TemporaryDirectory() as folder:
        experiment = build_experiment(args, folder, clock)
        start = time.perf_counter()
        experiment.run()
        wall = time.perf_counter() - start
    task = experiment.task
    games = experiment.total_frames // 2
    print(f"{games} games in {wall:.1f} s ({games / wall:.0f} games/s with evaluations)")
    for target, seconds in clock.reached.items():
        reached = "not reached" if seconds is None else f"{seconds:.1f}"
        print(f"training seconds to greedy accuracy {target}: {reached}")
    train = greedy_accuracy(experiment.policy, task, games=EVAL_GAMES, seed=123)
    test = greedy_accuracy(experiment.policy, task, games=EVAL_GAMES, split="test", seed=123)
    print(f"final greedy accuracy {train:.3f} (held-out objects {test:.3f}; chance {1 / GAME['n_candidates']:.3f})")


if __name__ == "__main__":
    main()
