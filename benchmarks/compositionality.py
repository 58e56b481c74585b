"""The hard referential tier: do population training, receiver resets, iterated learning or a
memoryless sender make the language compose?

Every option trains Gumbel-Softmax agents on ``referential_hard_v0`` (6 attributes x 10 values,
10% of the combinations held out, vocabulary 12, messages of 6 symbols) for the same number of
updates, and reports held-out accuracy and topographic similarity with 95% intervals over seeds,
and per run the accuracy of each attribute on held-out objects and how many are named (>= 0.5,
chance being 0.1).

    python benchmarks/compositionality.py                  # every option, 3 seeds
    python benchmarks/compositionality.py --options plain iterated --seeds 0 --steps 500
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import print_table, write_results  # noqa: E402

from commchannels.training.referential import Config, train  # noqa: E402

OPTIONS = {
    "plain": {},
    "population": {"population": 3},
    "receiver-resets": {"receiver_reset_every": 500},
    "iterated": {"generations": 4, "imitation_steps": 150},
    "memoryless": {"sender_memoryless": True},
    # not a compositionality option: a stronger entropy bonus (default 0.01) names more attributes
    "sender-entropy": {"sender_entropy": 0.3},
}


def interval(values: list[float]) -> tuple[float, float]:
    """Mean and half-width of a 95% Student-t interval (0 for one value)."""
    from scipy import stats

    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, float(stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / len(values) ** 0.5)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--options", nargs="+", default=list(OPTIONS), choices=list(OPTIONS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=2000, help="updates per run (the same for every option)")
    args = parser.parse_args(argv)
    runs, rows = [], []
    for name in args.options:
        option_runs = []
        for seed in args.seeds:
            cfg = Config(env_id="referential_hard_v0", method="gumbel", steps=args.steps, eval_every=250,
                         metrics_every=250, seed=seed, run={"progress": False}, **OPTIONS[name])
            result = train(cfg)
            # per attribute, on the final evaluation's held-out objects: a stalled language names some, not all
            interaction = result.extras["interaction"]
            attributes = interaction[interaction.split_masks()["test"]].attribute_accuracy()
            option_runs.append({"option": name, "seed": seed, **{k: result.final.get(k) for k in (
                "train_acc", "test_acc", "topsim", "posdis", "bosdis", "seconds")},
                "attributes_named": sum(a >= 0.5 for a in attributes),
                "attribute_acc": " ".join(f"{a:.2f}" for a in attributes)})
            print_table([option_runs[-1]])
        runs += option_runs
        row = {"option": name, "seeds": len(option_runs)}
        for key in ("test_acc", "topsim", "posdis", "attributes_named"):
            mean, half = interval([r[key] for r in option_runs])
            row[key] = f"{mean:.3f} ± {half:.3f}"
        rows.append(row)
    print()
    print_table(rows)
    write_results("compositionality", {"steps": args.steps, "options": OPTIONS, "rows": rows, "runs": runs})


if __name__ == "__main__":
    main()
