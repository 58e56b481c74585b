"""How fast each channel learns the standard referential game.

For every method (default options), plus ``gumbel-game-distractors`` and
``reinforce-game-distractors`` (the game's own candidates as training distractors) and
``reinforce-both`` (REINFORCE for the receiver too, with larger entropy bonuses): games seen
and wall seconds until the greedy train accuracy first reaches 90 / 95 / 99 %, and the final
train / held-out accuracies and language metrics. Each
run stops at 99 % or at its wall-clock budget. Timings depend on how busy the machine is.

    python benchmarks/train_referential.py            # all methods, 300 s budget each
    python benchmarks/train_referential.py --quick    # 20 s each, a smoke run
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import print_table, write_results  # noqa: E402

from commchannels.agents.channels import METHODS  # noqa: E402
from commchannels.config import config_to_dict  # noqa: E402
from commchannels.training.referential import Config, train  # noqa: E402

TARGETS = (0.9, 0.95, 0.99)
VARIANTS = {
    **{method: {"method": method} for method in METHODS},
    # the game's own 5 candidates as training distractors instead of the whole batch's
    "gumbel-game-distractors": {"method": "gumbel", "distractors": "game"},
    "reinforce-game-distractors": {"method": "reinforce", "distractors": "game"},
    "reinforce-both": {"method": "reinforce", "receiver_update": "reinforce", "lr": 1e-3, "baseline": "ema",
                       "sender_entropy": 0.03, "receiver_entropy": 0.01},
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 s per method")
    parser.add_argument("--seconds", type=float, default=300.0, help="wall budget per method")
    parser.add_argument("--methods", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    seconds = 20.0 if args.quick else args.seconds

    rows = []
    for method in args.methods:
        cfg = Config(**VARIANTS[method], max_seconds=seconds, steps=10**9, stop_accuracy=TARGETS[-1],
                     targets=TARGETS, seed=args.seed, run={"progress": False})
        final = train(cfg).final
        row = {"method": method, "steps": final["steps"], "seconds": final["seconds"],
               "train_acc": final["train_acc"], "test_acc": final["test_acc"],
               "topsim": final["topsim"], "posdis": final["posdis"]}
        for target in TARGETS:
            key = f"{target * 100:g}"
            row[f"games_to_{key}"] = final.get(f"samples_to_{key}")
            row[f"s_to_{key}"] = final.get(f"seconds_to_{key}")
        rows.append(row)
        print_table([row])
    print()
    print_table(rows)
    write_results("train_referential", {
        "game": "attributes 4x8, 5 candidates, vocab 16, max_len 4, discrimination",
        "budget_seconds": seconds, "defaults": config_to_dict(Config()), "variants": VARIANTS,
        "rows": rows,
    })


if __name__ == "__main__":
    main()
