"""Output exchange benchmark: every method with 4 workers on mnist1d.

Prints a table (final test accuracy, bytes sent, fraction of sync-sgd's bytes, steps to reach
90% of sync-sgd's final accuracy, wall time) and writes ``benchmarks/results/exchange.json``
with the goal checks: codistillation sends at least 100x fewer bytes than sync-sgd, ends within
1 point of its accuracy, and clearly above independent training.

    python benchmarks/exchange.py            # the defaults of `commchannels train exchange`
    python benchmarks/exchange.py --quick    # a short smoke run
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time
from pathlib import Path

from commchannels.config import config_to_dict
from commchannels.run_folder import replace_run
from commchannels.runs import atomic_write_text
from commchannels.training.exchange import Config, compare, format_table


def goals(rows: list[dict]) -> dict[str, object]:
    """The three goals of the issue, checked on the summary rows."""
    by = {r["method"]: r for r in rows}
    co, sync, ind = by["codistill"], by["sync-sgd"], by["independent"]
    ratio = sync["bytes_sent"] / max(co["bytes_sent"], 1)
    return {
        "bytes_ratio_sync_over_codistill": ratio,
        "codistill_100x_fewer_bytes": ratio >= 100,
        "codistill_minus_sync_points": 100 * (co["test_acc"] - sync["test_acc"]),
        "codistill_within_1_point_of_sync": co["test_acc"] >= sync["test_acc"] - 0.01,
        "codistill_minus_independent_points": 100 * (co["test_acc"] - ind["test_acc"]),
        "codistill_clearly_above_independent": co["test_acc"] >= ind["test_acc"] + 0.02,
    }


def mean_rows(per_seed: list[list[dict]]) -> list[dict]:
    """Average each method's numeric columns over seeds (steps to 90%: over seeds that got there)."""
    rows = []
    for same in zip(*per_seed):
        row = {"method": same[0]["method"]}
        for key in same[0]:
            values = [r[key] for r in same if isinstance(r.get(key), (int, float))]
            if key != "method":
                row[key] = sum(values) / len(values) if values else None
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 steps: a smoke run, not a result")
    parser.add_argument("--steps", type=int, default=None, help="override the number of steps")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--dataset", default="mnist1d")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="averaged over these")
    parser.add_argument("--mode", default="simulated", choices=("simulated", "processes"))
    parser.add_argument("--run-dir", default=None, help="also keep every run's folder and plots here")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "exchange.json"))
    args = parser.parse_args()

    cfg = Config(workers=args.workers, dataset=args.dataset, mode=args.mode, run={"tensorboard": False})
    steps = args.steps or (300 if args.quick else cfg.steps)
    cfg = dataclasses.replace(cfg, steps=steps, eval_every=min(cfg.eval_every, steps))
    start = time.perf_counter()
    per_seed, curves = {}, {}
    for seed in args.seeds:
        run_dir = str(Path(args.run_dir) / f"seed_{seed}") if args.run_dir else None
        # the benchmark's own folders: a rerun replaces them
        out = compare(replace_run(dataclasses.replace(cfg, seed=seed), run_dir=run_dir, overwrite=run_dir is not None))
        per_seed[seed] = out["rows"]
        print(f"seed {seed}\n{format_table(out['rows'])}\n")
        curves[seed] = {m: [{k: r[k] for k in ("step", "test_acc", "bytes_sent", "wall_time")}
                            for r in res.history] for m, res in out["results"].items()}
    rows = mean_rows(list(per_seed.values()))
    print(f"mean over seeds {args.seeds}\n{format_table(rows)}")
    checks = goals(rows)
    for key, value in checks.items():
        print(f"{key:>38}: {value:.3g}" if isinstance(value, float) else f"{key:>38}: {value}")
    report = {
        "config": config_to_dict(cfg), "seeds": args.seeds, "quick": args.quick, "rows": rows,
        "goals": checks, "rows_per_seed": per_seed, "curves_per_seed": curves,
        "total_seconds": time.perf_counter() - start,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "note": "wall times are noisy: measured on a shared machine",
    }
    atomic_write_text(args.out, json.dumps(report, indent=2))
    print(f"wrote {args.out} ({report['total_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
