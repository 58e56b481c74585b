"""``commchannels sweep TRAINER``: one trainer over a grid of options and seeds, then a table.

::

    commchannels sweep referential --grid method=gumbel,reinforce --grid lr=1e-3,2e-3 \\
        --seeds 0 1 2 --run-dir runs/sweep --steps 5000 --no-progress

runs the cartesian product of the ``--grid`` values, each with every seed, one after the other,
each in its own process (``python -m commchannels.cli train TRAINER ... --seed S --run-dir
RUN_DIR/POINT``) and its own run folder, named after its values
(``runs/sweep/method=gumbel,lr=1e-3,seed=0``). Options after the trainer that the sweep does not
know are passed to every point. Every point's config is built (and so validated) before any
runs, so a bad value fails at once naming the option.

``--resume`` continues a sweep: a point whose folder holds a finished run (``final.json``)
with the same options is skipped, an unfinished one continues from its checkpoint (as does a
finished one whose budget grew), and a folder holding a run with other options is refused.
``--overwrite`` replaces every point's run.

At the end, ``RUN_DIR/results.csv`` / ``results.json`` hold, per grid point, the mean and the
95% Student-t interval over seeds of every number in the points' ``final.json``, and the
table printed shows the main ones (``--metrics`` picks them).
"""

from __future__ import annotations

import argparse
import csv
import importlib
import io
import itertools
import json
import math
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from commchannels.config import MAX_SEED, check_int, config_from_args
from commchannels.run_folder import changed_options
from commchannels.runs import atomic_write_text
from commchannels.training.protocol import Interrupted, Trainer

DESCRIPTION = ("Run a trainer over a grid of options and seeds, sequentially, one process and one run folder "
               "per point, then print a table of mean and 95% interval over seeds (results.csv / results.json). "
               "Options the sweep does not know go to every point.")
HELP = "run a trainer over a grid of options and seeds, one process per point, then tabulate"
# options the sweep sets on every point: never a --grid key nor a passed-through option
OWNED = {"seed": "--seeds", "run.run_dir": "--run-dir", "run.resume": "--resume", "run.overwrite": "--overwrite"}
# the columns of the printed table when --metrics is not given (those present in final.json)
DEFAULT_METRICS = {
    "referential": ("train_acc", "test_acc", "topsim", "posdis", "samples_to_90", "seconds"),
    "teacher": ("eval_steps_mean", "eval_reached", "train_steps_to_target"),
    "exchange": ("test_acc", "test_acc_min", "train_loss", "bytes_sent", "wall_time"),
}
RESULTS_CSV, RESULTS_JSON, PLAN_JSON = "results.csv", "results.json", "sweep.json"


def add_sweep_arguments(parser: argparse.ArgumentParser, trainers: Sequence[str]) -> None:
    """The ``commchannels sweep`` options (the trainer's own options pass through)."""
    parser.add_argument("trainer", choices=list(trainers), help="the trainer to run (commchannels train TRAINER)")
    parser.add_argument("--grid", action="append", default=[], metavar="OPTION=V1,V2,...",
                        help="an option of the trainer and its values, comma-separated (repeat for a cartesian "
                             "grid; booleans take true,false)")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], metavar="SEED",
                        help="seeds run at every grid point (default: 0)")
    parser.add_argument("--run-dir", required=True, help="folder of the sweep: one run folder per point, results")
    parser.add_argument("--resume", action="store_true",
                        help="continue the sweep in run-dir: skip finished points, resume unfinished ones")
    parser.add_argument("--overwrite", action="store_true", help="replace the runs of every point in run-dir")
    parser.add_argument("--metrics", nargs="+", metavar="KEY",
                        help="final.json keys shown in the printed table (results files hold every number)")


# ---------------------------------------------------------------------- the plan
@dataclass
class Point:
    """One run of the sweep.

    Attributes:
        name: its folder's name (grid values and seed).
        group: the grid values alone (the row of the results table it counts in).
        values: ``{grid key: value as given}``.
        seed: its seed.
        argv: the trainer's arguments (after ``train TRAINER``), run folder and seed included.
        run_dir: its run folder.
        config: its validated config.
        action: ``"run"``, ``"resume"``, ``"overwrite"`` or ``"skip"`` (finished before).
        status: what happened (``"finished"``, ``"skipped"``, ``"failed (exit N)"``).
        final: its ``final.json``.
    """

    name: str
    group: str
    values: dict[str, str]
    seed: int
    argv: list[str]
    run_dir: Path
    config: Any
    action: str = "run"
    status: str = "planned"
    final: dict[str, Any] = field(default_factory=dict)


class _Parser(argparse.ArgumentParser):
    """A trainer's option parser that raises ``ValueError`` instead of exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ValueError(message)


def trainer_parser(trainer: str, argv: Sequence[str]) -> tuple[Any, argparse.ArgumentParser]:
    """``(module, parser)`` of ``commchannels train TRAINER`` for the options in ``argv`` (which
    may choose nested options, such as the game of ``--env-id``)."""
    from commchannels.cli import TRAINERS

    module = importlib.import_module(TRAINERS[trainer])
    parser = _Parser(prog=f"commchannels train {trainer}", argument_default=argparse.SUPPRESS)
    resolved = module.cli_nested(["train", trainer, *argv]) if hasattr(module, "cli_nested") else None
    from commchannels.config import add_config_arguments

    add_config_arguments(parser, module.Config, resolved)
    return module, parser


def parse_grid(items: Sequence[str]) -> dict[str, list[str]]:
    """``["method=gumbel,reinforce", "lr=1e-3"]`` -> ``{"method": ["gumbel", "reinforce"], "lr": ["1e-3"]}``
    (keys with dashes: ``n_values`` and ``--n-values`` are ``n-values``).

    Raises:
        ValueError: naming the item, for a missing ``=``, an empty value or a repeated key.
    """
    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip().lstrip("-").replace("_", "-")
        parts = [v.strip() for v in values.split(",")]
        if not sep or not key or not all(parts):
            raise ValueError(f"--grid {item!r} is not allowed; expected OPTION=V1,V2,... (e.g. --grid lr=1e-3,2e-3)")
        if key in grid:
            raise ValueError(f"--grid {key} is given twice; expected each option once, with all its values")
        if len(set(parts)) != len(parts):
            raise ValueError(f"--grid {item!r} repeats a value; expected distinct values")
        grid[key] = parts
    return grid


def _flag_arguments(parser: argparse.ArgumentParser, key: str, value: str, trainer: str) -> list[str]:
    """The command-line arguments setting option ``key`` to ``value`` for ``parser``."""
    action = parser._option_string_actions.get(f"--{key}")  # argparse keeps no public index of options
    if action is None:
        raise ValueError(f"--grid {key}={value}: --{key} is not an option of commchannels train {trainer}; "
                         f"expected one of its options (commchannels train {trainer} --help)")
    if action.dest in OWNED:
        raise ValueError(f"--grid {key}: the sweep sets --{key} itself; use {OWNED[action.dest]}")
    if isinstance(action, argparse.BooleanOptionalAction):
        truth = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}.get(value.lower())
        if truth is None:
            raise ValueError(f"--grid {key}={value}: {value!r} is not a boolean; expected true or false")
        return [f"--{key}" if truth else f"--no-{key}"]
    if action.nargs == "*":
        return [f"--{key}", *shlex.split(value)]
    return [f"--{key}", value]


def _folder_name(values: dict[str, str]) -> str:
    text = ",".join(f"{k}={v}" for k, v in values.items())
    return re.sub(r"[^A-Za-z0-9._=+,-]", "_", text)


def plan(trainer: str, grid: dict[str, list[str]], seeds: Sequence[int], run_dir: str | Path,
         passthrough: Sequence[str] = ()) -> list[Point]:
    """Every point of the sweep, its config built (and so validated) before any runs.

    Raises:
        ValueError: naming the option, for a bad grid key or value, a passed-through option the
            sweep owns, a bad seed, or points that would share a folder.
    """
    if not seeds:
        raise ValueError("--seeds is empty; expected at least one seed")
    for seed in seeds:
        check_int("seeds", seed, 0, MAX_SEED)
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds {list(seeds)} repeats a seed; expected distinct seeds")
    run_dir = Path(run_dir)
    _, base = trainer_parser(trainer, passthrough)
    given = vars(base.parse_args(list(passthrough)))
    for dest in given:
        if dest in OWNED:
            raise ValueError(f"the sweep sets {dest.split('.')[-1].replace('_', '-')} itself; use {OWNED[dest]} "
                             "instead of passing it to the trainer")
    points, names = [], set()
    for combination in itertools.product(*grid.values()):
        values = dict(zip(grid, combination))
        naive = [arg for k, v in values.items() for arg in (f"--{k}", v)]
        _, parser = trainer_parser(trainer, [*passthrough, *naive])
        grid_args = [arg for k, v in values.items() for arg in _flag_arguments(parser, k, v, trainer)]
        for k in values:
            dest = parser._option_string_actions[f"--{k}"].dest
            if dest in given:
                raise ValueError(f"--{k} is both a --grid key and an option passed to every point; expected one")
        group = _folder_name(values)
        for seed in seeds:
            name = f"{group},seed={seed}" if group else f"seed={seed}"
            if name in names:
                raise ValueError(f"two grid points share the folder name {name!r}; expected values that differ "
                                 "in letters, digits or . _ = + - ,")
            names.add(name)
            folder = run_dir / name
            argv = [*passthrough, *grid_args, "--seed", str(seed), "--run-dir", str(folder)]
            module, parser = trainer_parser(trainer, argv)
            try:
                config = config_from_args(module.Config, parser.parse_args(argv))
            except ValueError as err:
                raise ValueError(f"grid point {name}: {err}") from None
            points.append(Point(name, group, values, seed, argv, folder, config))
    return points


def _resumable_options(module: Any) -> tuple[str, ...]:
    """The options a trainer lets change on resume: its module's ``RESUMABLE``, or its
    :class:`~commchannels.training.protocol.Trainer`'s ``resumable``."""
    if isinstance(getattr(module, "RESUMABLE", None), tuple):
        return module.RESUMABLE
    trainers = [obj for obj in vars(module).values()
                if isinstance(obj, type) and issubclass(obj, Trainer) and obj is not Trainer]
    return tuple(trainers[0].resumable) if trainers else ()


def decide(points: list[Point], trainer: str, resume: bool, overwrite: bool) -> None:
    """Set each point's ``action`` from its folder, before anything runs.

    Raises:
        ValueError: a folder holds a run and neither ``resume`` nor ``overwrite`` was given, or
            (with ``resume``) it holds a run with other options.
    """
    from commchannels.cli import TRAINERS

    resumable = _resumable_options(importlib.import_module(TRAINERS[trainer]))
    for point in points:
        folder = point.run_dir
        holds = folder.is_dir() and any(p.name != ".lock" for p in folder.iterdir())
        if not holds:
            point.action = "run"
        elif overwrite:
            point.action = "overwrite"
        elif not resume:
            raise ValueError(f"run_dir={str(folder)!r} already holds a run of this sweep; expected --resume to "
                             "continue the sweep, --overwrite to replace it, or another --run-dir")
        else:
            point.action = _resume_action(point, resumable)


def _resume_action(point: Point, resumable: tuple[str, ...]) -> str:
    folder = point.run_dir
    try:
        saved = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return "overwrite"  # stopped before it wrote its config: nothing to keep
    changed = changed_options(saved, point.config)
    if any(k not in resumable for k in changed):
        raise ValueError(f"--resume but run_dir={str(folder)!r} holds a run with other options "
                         f"({[k for k in changed if k not in resumable]} differ); expected the sweep's options, "
                         "--overwrite, or another --run-dir")
    if (folder / "final.json").is_file() and not changed:
        return "skip"
    if (folder / "checkpoints" / "latest.pt").is_file():
        return "resume"
    return "overwrite"  # stopped before its first checkpoint


# ---------------------------------------------------------------------- running
def subprocess_runner(trainer: str, argv: list[str]) -> int:
    """Run one point as ``python -m commchannels.cli train TRAINER ARGV``; returns its exit code.

    SIGINT / SIGTERM received meanwhile are passed on as SIGTERM (the child checkpoints and
    exits), then :class:`SweepInterrupted` is raised.
    """
    from commchannels.training.protocol import stop_on_signals

    command = [sys.executable, "-m", "commchannels.cli", "train", trainer, *argv]
    with stop_on_signals() as stop:
        child = subprocess.Popen(command)
        forwarded = False
        while child.poll() is None:
            if stop.signum is not None and not forwarded:
                child.send_signal(signal.SIGTERM)  # a second SIGINT would skip the child's checkpoint
                forwarded = True
            time.sleep(0.1)
    if stop.signum is not None:
        raise SweepInterrupted(stop.signum)
    return int(child.returncode)


class SweepInterrupted(Interrupted):
    """The sweep was stopped by SIGINT / SIGTERM while running ``point``."""

    def __init__(self, signum: int, point: str | None = None, checkpoint: Path | None = None) -> None:
        where = "" if point is None else f" during point {point}" + (
            f" (checkpoint in {str(checkpoint)!r})" if checkpoint is not None else " (before its first checkpoint)")
        Exception.__init__(self, f"sweep interrupted by {signal.Signals(signum).name}{where}; continue the sweep "
                                 "with --resume")
        self.signum, self.step, self.checkpoint = signum, None, checkpoint


def run_sweep(
    trainer: str,
    grid: dict[str, list[str]],
    seeds: Sequence[int],
    run_dir: str | Path,
    passthrough: Sequence[str] = (),
    resume: bool = False,
    overwrite: bool = False,
    metrics: Sequence[str] | None = None,
    runner: Callable[[str, list[str]], int] = subprocess_runner,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Plan, check and run the sweep; write and return its results (see the module docstring).

    Args:
        runner: runs one point (``(trainer, argv) -> exit code``); a subprocess by default.
        echo: where progress lines and the table go.

    Raises:
        ValueError: a bad option (before anything runs).
        RuntimeError: some points failed (after the others ran and the results were written).
    """
    if resume and overwrite:
        raise ValueError("--resume and --overwrite are not allowed together; expected one of them")
    points = plan(trainer, grid, seeds, run_dir, passthrough)
    decide(points, trainer, resume, overwrite)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / PLAN_JSON, json.dumps(
        {"trainer": trainer, "grid": grid, "seeds": list(seeds), "passthrough": list(passthrough),
         "points": [p.name for p in points]}, indent=2))
    for i, point in enumerate(points, 1):
        prefix = f"[{i}/{len(points)}] {point.name}"
        if point.action == "skip":
            echo(f"{prefix}: finished before, skipped")
            point.status = "skipped"
        else:
            extra = {"resume": ["--resume"], "overwrite": ["--overwrite"]}.get(point.action, [])
            echo(f"{prefix}: {'resuming' if point.action == 'resume' else 'running'}")
            try:
                code = runner(trainer, [*point.argv, *extra])
            except SweepInterrupted as err:
                checkpoint = point.run_dir / "checkpoints" / "latest.pt"
                raise SweepInterrupted(err.signum, point.name, checkpoint if checkpoint.is_file() else None) from None
            point.status = "finished" if code == 0 else f"failed (exit {code})"
        try:
            point.final = json.loads((point.run_dir / "final.json").read_text())
        except (OSError, ValueError):
            point.final = {}
            if point.status in ("finished", "skipped"):
                point.status = "failed (no final.json)"
    results = summarize(trainer, grid, points)
    write_results(run_dir, results)
    echo(format_table(results, metrics))
    failed = [p.name for p in points if p.status.startswith("failed")]
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(points)} sweep points failed ({', '.join(failed[:5])}); "
                           f"the others are in {str(run_dir / RESULTS_CSV)!r}; see each point's output above")
    return results


# ---------------------------------------------------------------------- results
def mean_ci95(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and half-width of the 95% Student-t interval (``None`` for one value).

    >>> mean_ci95([1.0, 2.0, 3.0])
    (2.0, 2.484...)
    """
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, None
    from scipy import stats

    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, float(stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def summarize(trainer: str, grid: dict[str, list[str]], points: list[Point]) -> dict[str, Any]:
    """Per grid point (in grid order): the seeds that finished and, for every number of their
    ``final.json``, ``{"mean", "ci95", "values", "n"}``."""
    groups = []
    for group, members in itertools.groupby(points, key=lambda p: p.group):
        members = list(members)
        done = [p for p in members if not p.status.startswith("failed")]
        keys = sorted({k for p in done for k, v in p.final.items() if _is_number(v)})
        stats = {}
        for key in keys:
            values = [float(p.final[key]) for p in done if _is_number(p.final.get(key))]
            mean, half = mean_ci95(values)
            stats[key] = {"mean": mean, "ci95": half, "n": len(values), "values": values}
        groups.append({"group": group, "values": dict(members[0].values), "seeds": [p.seed for p in done],
                       "failed": [p.seed for p in members if p.status.startswith("failed")], "metrics": stats})
    return {"trainer": trainer, "grid": grid, "groups": groups,
            "points": [{"name": p.name, "values": p.values, "seed": p.seed, "run_dir": str(p.run_dir),
                        "status": p.status, "final": p.final} for p in points]}


def write_results(run_dir: Path, results: dict[str, Any]) -> None:
    """``results.json`` (everything) and ``results.csv`` (one row per grid point: its values,
    ``n_seeds``, and ``KEY_mean`` / ``KEY_ci95`` for every number)."""
    atomic_write_text(run_dir / RESULTS_JSON, json.dumps(results, indent=2))
    keys = sorted({k for g in results["groups"] for k in g["metrics"]})
    header = [*results["grid"], "n_seeds", *(f"{k}_{s}" for k in keys for s in ("mean", "ci95"))]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for g in results["groups"]:
        cells = [g["values"][k] for k in results["grid"]] + [len(g["seeds"])]
        for k in keys:
            stat = g["metrics"].get(k)
            cells += ["", ""] if stat is None else [stat["mean"], "" if stat["ci95"] is None else stat["ci95"]]
        writer.writerow(cells)
    atomic_write_text(run_dir / RESULTS_CSV, buffer.getvalue())


def _fmt(x: float) -> str:
    return f"{x:.4g}" if abs(x) < 1e5 else f"{x:.3g}"


def format_table(results: dict[str, Any], metrics: Sequence[str] | None = None) -> str:
    """The results as text: one row per grid point, ``mean ± half-width`` per metric."""
    present = {k for g in results["groups"] for k in g["metrics"]}
    if metrics:
        columns = list(metrics)
    else:
        columns = [k for k in DEFAULT_METRICS.get(results["trainer"], ()) if k in present] or sorted(present)[:6]
    header = [*results["grid"], "seeds", *columns]
    rows = []
    for g in results["groups"]:
        row = [g["values"][k] for k in results["grid"]]
        row.append(f"{len(g['seeds'])}" + (f" ({len(g['failed'])} failed)" if g["failed"] else ""))
        for key in columns:
            stat = g["metrics"].get(key)
            if stat is None:
                row.append("-")
            else:
                row.append(_fmt(stat["mean"]) + ("" if stat["ci95"] is None else f" ± {_fmt(stat['ci95'])}"))
        rows.append(row)
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows]]
    n_points = len(results["points"])
    return "\n".join([f"sweep of commchannels train {results['trainer']}: {n_points} run{'s' * (n_points != 1)} "
                      "(mean ± 95% interval over seeds)", *lines])


def main(args: argparse.Namespace, passthrough: Sequence[str]) -> None:
    """``commchannels sweep``, from the parsed sweep options and the trainer's options."""
    run_sweep(args.trainer, parse_grid(args.grid), args.seeds, args.run_dir, passthrough, resume=args.resume,
              overwrite=args.overwrite, metrics=args.metrics)
