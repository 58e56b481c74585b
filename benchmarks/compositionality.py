"""The hard referential tier: which training options and agents make the language compose?

Every option trains Gumbel-Softmax agents on ``referential_hard_v0`` (6 attributes x 10 values,
10% of the combinations held out, vocabulary 12, messages of 6 symbols) for the same number of
updates, and reports held-out accuracy and topographic similarity with 95% intervals over seeds,
and per run the accuracy of each attribute on held-out objects and how many are named (>= 0.5,
chance being 0.1). The options are the training pressures of the literature (population,
receiver resets, iterated learning, a memoryless sender), a stronger entropy bonus, and agents
built so that a positional language is the easy one to learn (a sender whose positions attend
over the attributes, a receiver that reads each position on its own), with their ablations.

    python benchmarks/compositionality.py                  # every option, 3 seeds
    python benchmarks/compositionality.py --options plain iterated --seeds 0 --steps 500
    python benchmarks/compositionality.py --options attention+additive --jobs 2 \
        --extend benchmarks/results/compositionality.json   # add options to an earlier report
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor
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
    # not compositionality options: a stronger entropy bonus (default 0.01) names more attributes
    "sender-entropy": {"sender_entropy": 0.3},
    "sender-entropy-1": {"sender_entropy": 1.0},
    # agents built for a positional language, with the entropy bonus that keeps every symbol in use,
    # each part alone (ablations) and without that bonus
    "attention-sender": {"sender_attention": True, "sender_entropy": 1.0},
    "additive-receiver": {"receiver_additive": True, "sender_entropy": 1.0},
    "attention+additive": {"sender_attention": True, "receiver_additive": True, "sender_entropy": 1.0},
    "attention+additive-entropy-0.01": {"sender_attention": True, "receiver_additive": True},
}
SUMMARY = ("test_acc", "topsim", "posdis", "attributes_named")


def interval(values: list[float]) -> tuple[float, float]:
    """Mean and half-width of a 95% Student-t interval (0 for one value)."""
    from scipy import stats

    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, float(stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / len(values) ** 0.5)


def run_one(name: str, seed: int, steps: int) -> dict:
    """One option on one seed: final metrics and per-attribute held-out accuracy."""
    cfg = Config(env_id="referential_hard_v0", method="gumbel", steps=steps, eval_every=250,
                 metrics_every=250, seed=seed, run={"progress": False}, **OPTIONS[name])
    result = train(cfg)
    # per attribute, on the final evaluation's held-out objects: a stalled language names some, not all
    interaction = result.extras["interaction"]
    attributes = interaction[interaction.split_masks()["test"]].attribute_accuracy()
    return {"option": name, "seed": seed, **{k: result.final.get(k) for k in (
        "train_acc", "test_acc", "topsim", "posdis", "bosdis", "seconds")},
        "attributes_named": sum(a >= 0.5 for a in attributes),
        "attribute_acc": " ".join(f"{a:.2f}" for a in attributes)}


def kept_runs(path: str, steps: int, seeds: list[int], rerun: list[str]) -> list[dict]:
    """The runs of an earlier report to keep (every option not in ``rerun``); refused unless it
    used the same updates, seeds and option settings."""
    old = json.loads(Path(path).read_text())
    old_seeds = old.get("seeds") or sorted({r["seed"] for r in old["runs"]})
    if old["steps"] != steps or sorted(old_seeds) != sorted(seeds):
        raise SystemExit(f"--extend {path}: it ran {old['steps']} updates on seeds {old_seeds}; this run "
                         f"asks for {steps} updates on seeds {seeds}")
    kept = [r for r in old["runs"] if r["option"] not in rerun]
    changed = sorted({r["option"] for r in kept if old["options"].get(r["option"]) != OPTIONS.get(r["option"])})
    if changed:
        raise SystemExit(f"--extend {path}: options {changed} have other settings there than here; rerun them")
    return kept


def summary_rows(runs: list[dict]) -> list[dict]:
    """One row per option (in :data:`OPTIONS` order): mean ± 95% half-width of each summary metric."""
    rows = []
    for name in [n for n in OPTIONS if any(r["option"] == n for r in runs)]:
        option_runs = [r for r in runs if r["option"] == name]
        row = {"option": name, "seeds": len(option_runs)}
        for key in SUMMARY:
            mean, half = interval([r[key] for r in option_runs])
            row[key] = f"{mean:.3f} ± {half:.3f}"
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--options", nargs="+", default=list(OPTIONS), choices=list(OPTIONS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=2000, help="updates per run (the same for every option)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once, one process each (one thread per run)")
    parser.add_argument("--extend", default=None, help="an earlier report whose other options' runs are kept")
    parser.add_argument("--out", default=None, help="where to write the report (default: "
                                                    "benchmarks/results/compositionality.json)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        raise SystemExit(f"--jobs {args.jobs}: expected at least 1")
    kept = kept_runs(args.extend, args.steps, args.seeds, args.options) if args.extend else []
    points = [(name, seed) for name in args.options for seed in args.seeds]
    if args.jobs == 1:
        runs = []
        for name, seed in points:
            runs.append(run_one(name, seed, args.steps))
            print_table([runs[-1]])
    else:
        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            runs = list(pool.map(run_one, *zip(*points), [args.steps] * len(points)))
        print_table(runs)
    runs = kept + runs
    rows = summary_rows(runs)
    print()
    print_table(rows)
    payload = {"steps": args.steps, "seeds": args.seeds,
               "options": {r["option"]: OPTIONS[r["option"]] for r in rows}, "rows": rows, "runs": runs}
    write_results("compositionality", payload, args.out)


if __name__ == "__main__":
    main()
