"""``commchannels benchmark``: the task list, running methods, the report, the references.

::

    commchannels benchmark tasks
    commchannels benchmark run --method gumbel --tasks referential-small
    commchannels benchmark run --method mypkg.mymodule:make --tasks referential --out runs/mine.json
    commchannels benchmark report runs/mine.json --out runs/report
    commchannels benchmark references --jobs 2
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from commchannels.benchmark.tasks import DEFAULT_SEEDS, TASK_LIST, TASKS_VERSION, TRACKS, select_tasks

HELP = "benchmark communication policies under one protocol (tasks, run, report, references)"
DESCRIPTION = ("A versioned task list (referential games in tiers, teaching, output exchange), a method interface "
               "(a built-in method or package.module:make), reference scores stored with the package, and a report "
               "with IQM and bootstrap intervals (rliable). See docs/benchmark.md.")


def add_benchmark_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``commchannels benchmark`` sub-commands."""
    commands = parser.add_subparsers(dest="benchmark_command", required=True, metavar="COMMAND")
    commands.add_parser("tasks", help=f"list the tasks (task list version {TASKS_VERSION})")
    task_help = (f"tasks to run: names, name@version, or a track ({', '.join(TRACKS)}); default: every task the "
                 "method applies to")

    run = commands.add_parser("run", help="train and evaluate a method on tasks, then compare with the references")
    run.add_argument("--method", action="append", required=True, metavar="METHOD",
                     help="a built-in method (commchannels benchmark tasks lists them) or package.module:make / "
                          "path/to/file.py:make, called as make(task, seed) -> policy (repeatable)")
    run.add_argument("--name", action="append", metavar="NAME",
                     help="how each --method is named in the results and tables, in the same order (default: "
                          "its name, or FILE.py:ATTRIBUTE for a method in a file)")
    run.add_argument("--tasks", nargs="+", metavar="TASK", help=task_help)
    run.add_argument("--seeds", nargs="+", type=int, default=list(DEFAULT_SEEDS), metavar="SEED",
                     help="training seeds (default: the references' 0 1 2 3 4)")
    run.add_argument("--out", help="results file (default: runs/benchmark/METHOD.json); rows already there are "
                                   "kept and not run again")
    _add_common(run)

    report = commands.add_parser("report", help="aggregate results files: IQM, bootstrap intervals, "
                                                "performance profiles, a plot per task")
    report.add_argument("results", nargs="*", metavar="RESULTS", help="results files of commchannels benchmark run")
    report.add_argument("--out", default="runs/benchmark/report", help="folder of report.json/.csv and the PNGs")
    report.add_argument("--no-references", action="store_true", help="leave the reference scores out")

    refs = commands.add_parser("references", help="regenerate the reference scores (every task's reference methods, "
                                                  "5 seeds)")
    refs.add_argument("--tasks", nargs="+", metavar="TASK", help=task_help)
    refs.add_argument("--seeds", nargs="+", type=int, default=list(DEFAULT_SEEDS), metavar="SEED")
    refs.add_argument("--out", help="reference file (default: the package's references.json); an interrupted "
                                    "regeneration continues where it stopped")
    _add_common(refs, jobs=2)


def _add_common(parser: argparse.ArgumentParser, jobs: int = 1) -> None:
    parser.add_argument("--jobs", type=int, default=jobs, help=f"runs in parallel, one process each (default {jobs})")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def task_table() -> str:
    """The task list as a text table."""
    lines = [f"commchannels benchmark tasks, version {TASKS_VERSION}", ""]
    for task in TASK_LIST:
        lines += [f"{task.key}  [{task.track}]  {task.description}",
                  f"    env {task.env_id or 'exchange'} {task.env}",
                  f"    budget {task.budget:,} {task.budget_unit}; evaluation {_evaluation(task)}; score from "
                  f"{task.primary} ({task.chance:g} -> 0, {task.best:g} -> 1); metrics {', '.join(task.metrics)}",
                  f"    reference methods: {', '.join(task.reference_methods)}"]
    return "\n".join(lines)


def _evaluation(task) -> str:
    if task.track == "referential":
        return f"{task.eval_games} greedy games per split (train objects, held-out objects)"
    if task.track == "teaching":
        return f"{task.eval_seeds} seeds x {task.eval_games} students of held-out families"
    return "every worker's model on the whole test split"


def _check_positive(name: str, value: int) -> None:
    if value < 1:
        raise ValueError(f"--{name} {value} is not allowed; expected at least 1")


def main(args: argparse.Namespace) -> None:
    """Run ``commchannels benchmark ...`` (``args`` from :func:`add_benchmark_arguments`)."""
    from commchannels.benchmark import runner

    command = args.benchmark_command
    if command == "tasks":
        print(task_table())
        return
    if command == "report":
        from commchannels.benchmark.report import report

        if not args.results and args.no_references:
            raise ValueError("nothing to report: give results files, or leave out --no-references")
        print(report(args.results, args.out, references=not args.no_references))
        return
    _check_positive("jobs", args.jobs)
    _check_positive("threads", args.threads)
    tasks = select_tasks(args.tasks)
    if command == "references":
        out = Path(args.out) if args.out else runner.REFERENCES
        runner.references(tasks, args.seeds, out=out, jobs=args.jobs, threads=args.threads,
                          show_progress=not args.no_progress)
        print(f"reference scores written to {out}")
        return
    units = runner.plan(args.method, tasks, args.seeds, labels=args.name)
    if not units:
        raise ValueError(f"method(s) {args.method} apply to none of the tasks {[t.name for t in tasks]}")
    labels = list(dict.fromkeys(unit[3] for unit in units))
    out = Path(args.out) if args.out else Path("runs/benchmark") / (_slug("+".join(labels)) + ".json")
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = runner.run_units(units, out, jobs=args.jobs, threads=args.threads, show_progress=not args.no_progress)
    from commchannels.benchmark.report import comparison_table

    keys = {t.key for t in tasks}
    print(comparison_table([r for r in rows if r["task"] in keys and r["method"] in labels]))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", text).strip("_") or "method"
