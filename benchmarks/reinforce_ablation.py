"""Why REINFORCE lagged on the game's own candidates: games to 90% train accuracy per variant.

The game of issue #12 (4x8 attributes, 10% of combinations held out, 5 candidates, vocabulary 16,
max_len 4, GRU, batch 128, Adam 2e-3, ``--distractors game``), REINFORCE for the sender and
cross-entropy for the receiver, stopped at 90% greedy train accuracy or at ``--budget`` games.
Variants change one thing at a time from the old defaults (symbol embeddings initialised at
N(0, 1/embed), exponential running-mean baseline, entropy bonus 0.01) to the new ones (N(0, 1),
the mean over all updates as in EGG, 0.05). ``scaled`` variants rescale the symbol embeddings
after construction to reproduce the old initialisation.

    python benchmarks/reinforce_ablation.py                 # every variant, seeds 0-4 (about 1 h)
    python benchmarks/reinforce_ablation.py --variants new --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import print_table, write_results  # noqa: E402

from commchannels.training import referential  # noqa: E402

# name -> (config overrides, symbol embeddings at the old N(0, 1/embed) scale)
VARIANTS = {
    "old defaults": ({"baseline": "ema", "sender_entropy": 0.01}, True),
    "old + mean baseline": ({"baseline": "mean", "sender_entropy": 0.01}, True),
    "old + batch baseline": ({"baseline": "batch", "sender_entropy": 0.01}, True),
    "N(0,1) symbols": ({"baseline": "ema", "sender_entropy": 0.01}, False),
    "N(0,1) + mean baseline": ({"baseline": "mean", "sender_entropy": 0.01}, False),
    "N(0,1) + entropy 0.05": ({"baseline": "ema", "sender_entropy": 0.05}, False),
    "new (N(0,1) + mean + 0.05)": ({}, False),
}


def rescale_symbol_embeddings(make_agents):
    """``make_agents`` whose symbol embeddings are redrawn at the old N(0, 1/embed) scale."""

    def make(*args, **kwargs):
        agents = make_agents(*args, **kwargs)
        with torch.no_grad():
            for agent in agents:
                for name, parameter in agent.named_parameters():
                    if name.endswith("embedding"):
                        parameter.normal_(0.0, parameter.shape[1] ** -0.5)
        return agents

    return make


def run(overrides: dict, scaled: bool, seed: int, budget: int) -> dict:
    original = referential.make_agents
    if scaled:
        referential.make_agents = rescale_symbol_embeddings(original)
    try:
        cfg = referential.Config(method="reinforce", distractors="game", steps=budget // 128, stop_accuracy=0.9,
                                 eval_every=25, metrics_every=10**9, targets=(0.9,), seed=seed,
                                 run={"progress": False}, **overrides)
        final = referential.train(cfg).final
    finally:
        referential.make_agents = original
    return {"games_to_90": final.get("samples_to_90"), "train_acc": final["train_acc"], "seconds": final["seconds"]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--budget", type=int, default=400_000, help="games before giving up")
    args = parser.parse_args(argv)
    runs, rows = [], []
    for name in args.variants:
        overrides, scaled = VARIANTS[name]
        games = []
        for seed in args.seeds:
            result = {"variant": name, "seed": seed, **run(overrides, scaled, seed, args.budget)}
            runs.append(result)
            games.append(result["games_to_90"])
            print_table([result])
        reached = sorted(g for g in games if g is not None)
        rows.append({"variant": name, "seeds": len(games), "reached_90": len(reached),
                     "at_most_150k": sum(g <= 150_000 for g in reached),
                     "median_games_to_90": statistics.median([g if g is not None else float("inf") for g in games]),
                     "games_to_90_per_seed": " ".join("-" if g is None else f"{g // 1000}k" for g in games)})
    print()
    print_table(rows)
    write_results("reinforce_ablation", {"budget_games": args.budget, "rows": rows, "runs": runs})


if __name__ == "__main__":
    main()
