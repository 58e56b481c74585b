"""Your own method under the benchmark protocol, compared with the reference scores.

A method is ``make(task, seed) -> policy``; here, the project's Gumbel-Softmax trainer with an
annealed temperature (from 2 down to 0.5 over the budget) instead of a constant 1. The protocol
trains it on the task's budget for each seed, evaluates it on the same held-out games as the
references, and prints the per-task table beside them. From the shell, the same thing is::

    commchannels benchmark run --method examples/benchmark_method.py:make --tasks referential-small

    python examples/benchmark_method.py [--quick] [--tasks referential-small referential-digits]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from commchannels.benchmark.referential import UPDATE_GAMES, TrainedPair, train_pair
from commchannels.benchmark.tasks import Task
from commchannels.cli import main as commchannels


def make(task: Task, seed: int) -> TrainedPair:
    """Gumbel-Softmax, its temperature annealed geometrically from 2 to 0.5 over the task's budget."""
    updates = max(1, task.budget // UPDATE_GAMES)
    return train_pair(task, seed, "gumbel", temperature=2.0, temperature_min=0.5,
                      temperature_decay=0.25 ** (1 / updates))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed (smoke test)")
    parser.add_argument("--tasks", nargs="+", default=["referential-small"])
    args = parser.parse_args()
    seeds = ["0"] if args.quick else ["0", "1", "2", "3", "4"]
    # the method is named by its file, as a user names theirs: path/to/file.py:make
    method = f"{Path(__file__).resolve()}:make"
    commchannels(["benchmark", "run", "--method", method, "--name", "annealed-gumbel", "--tasks", *args.tasks,
                  "--seeds", *seeds, "--out", "annealed_gumbel.json", "--no-progress"])


if __name__ == "__main__":
    main()
