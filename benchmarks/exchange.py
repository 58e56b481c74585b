"""Output exchange benchmark: every method on mnist1d.

``--regime mlp`` (the first benchmark): the defaults of ``commchannels train exchange`` (an MLP,
4 workers, 3000 steps). Prints a table (final test accuracy, bytes sent, fraction of sync-sgd's
bytes, steps to reach 90% of sync-sgd's final accuracy, wall time) and writes
``benchmarks/results/exchange.json`` with the goal checks: codistillation sends at least 100x
fewer bytes than sync-sgd, ends within 1 point of its accuracy, and clearly above independent
training.

``--regime converged`` (issue #11): the CNN of Greydanus (2020) on MNIST-1D, every method and
variant (DDP with the fp16 and PowerSGD hooks, DiLoCo, codistillation by predictions or by
checkpoints, on the shared inputs or a held-out pool with and without augmentation). Each
variant's learning rate is chosen from ``--lrs`` by its final accuracy on a validation split
held out of training (seed ``--seeds[0]``; never on test), then run for every seed; with
``--tuned-from`` the choices of an earlier report are reused (a worker sweep tunes once, at
``--tuned-workers``, the same budget for every variant). Reported per
variant and worker count: final test accuracy, bytes sent, and, for the target (sync DDP's final
accuracy minus 1 point unless ``--target``), the steps, bytes and simulated wall time at each
``--bandwidths`` link to reach it. Plots: accuracy against simulated time per bandwidth, and
bytes-to-target and accuracy against workers. Writes ``benchmarks/results/exchange_converged.json``.

    python benchmarks/exchange.py                      # the MLP regime
    python benchmarks/exchange.py --quick              # a short smoke run
    python benchmarks/exchange.py --regime converged --workers 4 --seeds 0 1 2
    python benchmarks/exchange.py --regime converged --workers 2 8 16 32 --seeds 0 1 2 \
        --tuned-from benchmarks/results/exchange_converged.json --out benchmarks/results/exchange_workers.json
    python benchmarks/exchange.py --regime converged --steps 300 --lrs 1e-3 3e-3 --seeds 0 --smoke
    # variants run in parallel processes, then merged into one report (no training)
    python benchmarks/exchange.py --regime converged --variants sync-ddp --out a.json &
    python benchmarks/exchange.py --regime converged --variants codistill-top1 --out b.json
    python benchmarks/exchange.py --regime converged --variants --extend a.json b.json --out both.json
    # the same runs priced as on hardware 4x faster than the machine that measured their compute
    python benchmarks/exchange.py --regime converged --variants --extend both.json --compute-speedup 4 --out x4.json
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
from commchannels.training.exchange import Config, compare, format_table, train
from commchannels.training.exchange.config import parse_bandwidth
from commchannels.training.exchange.report import reach, time_at

# the columns of each evaluation row the report keeps (enough to price any other link)
CURVE = ("step", "test_acc", "val_acc", "bytes_sent", "compute_time", "link_messages", "link_bytes", "sim_time")
# label -> options of each variant of the converged regime
VARIANTS = {
    "independent": dict(method="independent"),
    "sync-ddp": dict(method="sync-sgd"),
    "fp16-compress": dict(method="fp16-compress"),
    "powersgd-r1": dict(method="powersgd", powersgd_rank=1),
    "powersgd-r2": dict(method="powersgd", powersgd_rank=2),
    "powersgd-r4": dict(method="powersgd", powersgd_rank=4),
    "local-sgd": dict(method="local-sgd"),
    "diloco": dict(method="diloco", optimizer="adamw"),
    "codistill": dict(method="codistill"),
    # Anil et al.'s rare exchanges: every 50 steps, 250 examples at 4 bits (about 300x fewer bytes than DDP)
    "codistill-sparse": dict(method="codistill", exchange_every=50, public_batch=250, bits=4),
    # hard labels with their confidence: the top-1 class and its probability, 4 bits each (1 byte per example)
    "codistill-top1": dict(method="codistill", topk=1, bits=4),
    # top-1 with a cheap step: 16 distilled examples per step (not 64) from 250-example exchanges
    "codistill-top1-lean": dict(method="codistill", topk=1, bits=4, distill_batch=16, public_batch=250),
    "codistill-ckpt": dict(method="codistill", codistill_form="checkpoints"),
    "codistill-heldout": dict(method="codistill", public_pool="heldout", public_size=1000),
    "codistill-heldout-aug": dict(method="codistill", public_pool="heldout", public_size=1000, public_shift=4,
                                  public_noise=0.05),
}


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


def tuned_settings(path: str, workers: int, variants: list[str]) -> dict[str, tuple[float, float]]:
    """Each variant's (learning rate, alpha) as chosen on validation in an earlier converged report."""
    per = json.loads(Path(path).read_text())["per_workers"]
    if str(workers) not in per:
        raise SystemExit(f"--tuned-workers {workers}: {path} has no such run; it has workers {sorted(per, key=int)}")
    chosen = {r["variant"]: (r["lr"], r["alpha"]) for r in per[str(workers)]["rows"]}
    missing = [v for v in variants if v not in chosen]
    if missing:
        raise SystemExit(f"--tuned-from {path} has no tuned settings for variants {missing}; it has {sorted(chosen)}")
    return chosen


def extended_runs(paths: list[str], report: dict, workers: list[int], rerun: list[str]) -> dict[str, dict]:
    """The runs of earlier converged reports to keep (all but ``rerun``'s), per worker count,
    merged; refused unless each report has the same settings and seeds, or if two reports hold
    the same variant."""
    kept: dict[str, dict] = {str(w): {} for w in workers}
    source: dict[tuple[str, str], str] = {}
    for path in paths:
        old = json.loads(Path(path).read_text())
        for key in ("config", "seeds", "lrs", "latency", "bandwidths"):
            if old.get(key) != json.loads(json.dumps(report[key])):
                raise SystemExit(f"--extend {path}: its {key} {old.get(key)!r} differs from this run's "
                                 f"{report[key]!r}")
        for w in workers:
            for label, run in old["per_workers"].get(str(w), {}).get("runs", {}).items():
                if label in rerun:
                    continue
                if (str(w), label) in source:
                    raise SystemExit(f"--extend: variant {label!r} at {w} workers is in both "
                                     f"{source[str(w), label]} and {path}; expected it in one report")
                source[str(w), label] = path
                kept[str(w)][label] = run
    return kept


def converged(args: argparse.Namespace) -> None:
    """The converged regime of issue #11 (see the module docstring)."""
    from commchannels.runs import plot_curves

    start = time.perf_counter()
    steps = args.steps or 3000
    # PowerSGD compresses after 10% of the steps (torch's advice); codistillation starts no later
    base = Config(dataset=args.dataset, model="cnn", channels=args.channels, steps=steps,
                  eval_every=max(steps // 20, 1), val_size=500, powersgd_start=max(steps // 10, 2),
                  burn_in=min(200, steps // 10), mode=args.mode,
                  exchange_every=args.exchange_every, run={"tensorboard": False, "progress": False})
    variants = {k: VARIANTS[k] for k in (VARIANTS if args.variants is None else args.variants)}
    if not variants and not args.extend:
        raise SystemExit("--variants with no variant only merges --extend reports; expected --extend FILE ...")
    tuned = tuned_settings(args.tuned_from, args.tuned_workers, list(variants)) if args.tuned_from else {}
    links = [(b, parse_bandwidth(b)) for b in args.bandwidths]
    report: dict = {"config": config_to_dict(base), "seeds": args.seeds, "lrs": args.lrs, "smoke": args.smoke,
                    "tuned_from": ({"file": Path(args.tuned_from).name, "workers": args.tuned_workers}
                                   if tuned else None),
                    "latency": args.latency, "bandwidths": args.bandwidths,
                    "compute_speedup": args.compute_speedup, "per_workers": {}}
    kept = extended_runs(args.extend, report, args.workers, list(variants)) if args.extend else {}
    for workers in args.workers:
        runs: dict[str, dict] = dict(kept.get(str(workers), {}))
        for label, options in variants.items():
            cfg = dataclasses.replace(base, workers=workers, **options)
            alphas = args.alphas if cfg.method == "codistill" else [cfg.alpha]
            grid = [tuned[label]] if tuned else [(lr, alpha) for lr in args.lrs for alpha in alphas]
            tuning = {g: train(dataclasses.replace(cfg, lr=g[0], alpha=g[1], seed=args.seeds[0])) for g in grid}
            best = max(tuning, key=lambda g: tuning[g].final["val_acc"])  # validation, never test
            results = [tuning[best]] + [train(dataclasses.replace(cfg, lr=best[0], alpha=best[1], seed=s))
                                        for s in args.seeds[1:]]
            lr = best[0]
            runs[label] = {"lr": lr, "alpha": best[1],
                           "val_acc_per_lr": {f"lr={k[0]:g} alpha={k[1]:g}": r.final["val_acc"]
                                              for k, r in tuning.items()},
                           "histories": [[{k: row[k] for k in CURVE if k in row} for row in r.history]
                                         for r in results]}
            print(f"workers {workers} {label:<22} lr {lr:g} alpha {best[1]:g}  test acc "
                  f"{sum(r.final['test_acc'] for r in results) / len(results):.4f}", flush=True)
        ref = runs.get("sync-ddp")
        finals = {k: [h[-1] for h in v["histories"]] for k, v in runs.items()}
        target = args.target if args.target is not None else (
            sum(r["test_acc"] for r in finals["sync-ddp"]) / len(finals["sync-ddp"]) - 0.01 if ref else 0.0)
        rows = []
        for label, run in runs.items():
            mean = {k: sum(r[k] for r in finals[label]) / len(finals[label])
                    for k in ("test_acc", "val_acc", "bytes_sent", "sim_time", "compute_time")}
            row = {"variant": label, "lr": run["lr"], "alpha": run["alpha"], **mean, "target": target}
            for name, bandwidth in links:
                reached = [reach(h, target, bandwidth, args.latency, args.compute_speedup) for h in run["histories"]]
                got = [r for r in reached if r is not None]
                row[f"reached_{name}"] = f"{len(got)}/{len(reached)}"
                row[f"sim_time_to_target_{name}_per_seed"] = [None if r is None else r["sim_time"] for r in reached]
                for key in ("step", "bytes_sent", "sim_time"):
                    row[f"{key}_to_target_{name}"] = sum(r[key] for r in got) / len(got) if got else None
            rows.append(row)
        report["per_workers"][workers] = {"target": target, "rows": rows, "runs": runs}
        first = links[0][0]
        print(f"\nworkers {workers}, target test accuracy {target:.4f}, simulated time at {first} "
              f"(latency {args.latency:g} s, compute {args.compute_speedup:g}x as fast as measured)")
        print(f"{'variant':<22} {'lr':>7} {'test acc':>8} {'MB sent':>9} {'steps@T':>7} {'MB@T':>9} {'sim s@T':>8}")
        for r in rows:
            cells = [r[f"{k}_to_target_{first}"] for k in ("step", "bytes_sent", "sim_time")]
            text = ["-" if c is None else f"{c:.0f}" if i == 0 else f"{c / 1e6:.3f}" if i == 1 else f"{c:.2f}"
                    for i, c in enumerate(cells)]
            print(f"{r['variant']:<22} {r['lr']:>7.0e} {r['test_acc']:>8.4f} {r['bytes_sent'] / 1e6:>9.3f} "
                  f"{text[0]:>7} {text[1]:>9} {text[2]:>8}")
        if args.plots:
            for name, bandwidth in links:
                series = {k: ([time_at(r, bandwidth, args.latency, args.compute_speedup) for r in v["histories"][0]],
                              [r["test_acc"] for r in v["histories"][0]]) for k, v in runs.items()}
                plot_curves(Path(args.plots) / f"converged_w{workers}_acc_vs_simtime_{name}.png", series,
                            f"simulated time (s) at {name}, latency {args.latency:g} s", "test accuracy",
                            title=f"{workers} workers, seed {args.seeds[0]}", logx=True)
    if args.plots and len(args.workers) > 1:
        first = links[0][0]
        per = report["per_workers"]
        for key, ylabel, name in (("test_acc", "final test accuracy", "acc_vs_workers"),
                                  (f"bytes_sent_to_target_{first}", "bytes sent to reach the target",
                                   "bytes_to_target_vs_workers")):
            labels = [r["variant"] for r in per[args.workers[0]]["rows"]]
            series = {v: (list(args.workers), [next(r[key] for r in per[w]["rows"] if r["variant"] == v)
                                               for w in args.workers]) for v in labels}
            plot_curves(Path(args.plots) / f"converged_{name}.png", series, "workers", ylabel, logx=True)
    report["total_seconds"] = time.perf_counter() - start
    report["machine"] = f"{platform.machine()} {platform.processor() or ''}".strip()
    report["note"] = ("compute times are CPU times of the training steps (simulated workers: the process's / N), "
                      "measured on a shared machine; "
                      + ("SMOKE RUN: too few steps and seeds to be a result" if args.smoke else ""))
    atomic_write_text(args.out, json.dumps(report, indent=2))
    print(f"wrote {args.out} ({report['total_seconds']:.0f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regime", default="mlp", choices=("mlp", "converged"))
    parser.add_argument("--quick", action="store_true", help="300 steps: a smoke run, not a result")
    parser.add_argument("--steps", type=int, default=None, help="override the number of steps")
    parser.add_argument("--workers", type=int, nargs="+", default=[4], help="(converged: a sweep)")
    parser.add_argument("--dataset", default="mnist1d")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="averaged over these")
    parser.add_argument("--mode", default="simulated", choices=("simulated", "processes"))
    parser.add_argument("--run-dir", default=None, help="also keep every run's folder and plots here")
    parser.add_argument("--out", default=None, help="the JSON report (default: benchmarks/results/...)")
    converged_options = parser.add_argument_group("converged regime")
    converged_options.add_argument("--lrs", type=float, nargs="+", default=[1e-3, 3e-3, 1e-2],
                                   help="learning rates tried per variant (chosen on validation)")
    converged_options.add_argument("--alphas", type=float, nargs="+", default=[1.0, 5.0],
                                   help="distillation weights tried per codistill variant (chosen on validation)")
    converged_options.add_argument("--variants", nargs="*", choices=tuple(VARIANTS), default=None,
                                   help="variants to run (default: all; none: only merge the --extend reports)")
    converged_options.add_argument("--tuned-from", default=None,
                                   help="take every variant's learning rate and alpha from this earlier converged "
                                        "report instead of tuning them (the worker sweep's protocol)")
    converged_options.add_argument("--tuned-workers", type=int, default=4,
                                   help="the worker count of --tuned-from whose choices are taken")
    converged_options.add_argument("--channels", type=int, default=25, help="channels of the CNN (a wider model "
                                   "sends more gradient bytes, the same prediction bytes)")
    converged_options.add_argument("--exchange-every", type=int, default=10)
    converged_options.add_argument("--extend", nargs="+", default=None,
                                   help="keep the variants of these earlier converged reports (same settings and "
                                        "seeds; each variant in one of them) and run only --variants, adding or "
                                        "replacing them")
    converged_options.add_argument("--bandwidths", nargs="+", default=["100Mbit", "1Gbit", "10Gbit"])
    converged_options.add_argument("--latency", type=float, default=1e-4, help="seconds per message")
    converged_options.add_argument("--compute-speedup", type=float, default=1.0,
                                   help="price compute as on hardware this many times faster than the measuring "
                                        "machine (1: as measured); re-price a report without training with "
                                        "--variants --extend FILE")
    converged_options.add_argument("--target", type=float, default=None,
                                   help="test accuracy to reach (default: sync DDP's final minus 0.01)")
    converged_options.add_argument("--plots", default=str(Path(__file__).parent / "results" / "exchange_converged"),
                                   help="folder of the PNG plots ('' for none)")
    converged_options.add_argument("--smoke", action="store_true", help="label the report a smoke run")
    args = parser.parse_args()
    if args.compute_speedup <= 0:
        parser.error(f"--compute-speedup {args.compute_speedup:g}: expected a positive factor (1: as measured)")
    results = Path(__file__).parent / "results"
    if args.regime == "converged":
        args.out = args.out or str(results / ("exchange_converged_smoke.json" if args.smoke
                                              else "exchange_converged.json"))
        converged(args)
        return
    args.out = args.out or str(results / "exchange.json")
    if len(args.workers) != 1:
        parser.error("--workers takes one value in the mlp regime")

    cfg = Config(workers=args.workers[0], dataset=args.dataset, mode=args.mode, run={"tensorboard": False})
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
