"""The benchmark report: aggregate scores with stratified bootstrap intervals, tables and plots.

Statistics follow Agarwal et al. 2021 ("Deep RL at the edge of the statistical precipice",
the ``rliable`` package): the interquartile mean (IQM) of the normalised score with a 95%
stratified bootstrap confidence interval (seeds resampled within each task), the mean, the
optimality gap, and performance profiles (the fraction of runs scoring above each threshold).

**Coverage.** Methods run on different tracks (a teaching method has no referential score),
and a user may run a subset of the tasks. So the aggregate is computed **per track, over the
tasks that every user's method has** (the comparison a user asks for: the references are
aggregated over the same tasks), or, for the references alone, over the tasks of the methods
that cover the most (the ``tasks`` of each aggregate row). Each method's runs are the seeds it
has on all of those tasks; a method lacking one of them is left out of the aggregate (the table
says so) and stays in the per-task tables. Scores are only comparable at the same
``name@version``, so rows of another task version are refused when loading.

**Sources.** Rows carry a ``source``: ``reference`` for the reference file
(:data:`REFERENCES`), ``yours`` for results passed in. A method is labelled by its name, plus
`` (yours)`` for a user's rows, so a user's ``gumbel`` stays apart from the reference
``gumbel``.

**Determinism.** rliable's stratified bootstrap draws its indices from numpy's global generator
(its ``random_state`` argument does not reach the resampling, rliable 1.2.0), so each bootstrap
runs under a seeded global generator that is restored afterwards. Every method is seeded alike:
adding a method over the same tasks does not move another's interval.
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from commchannels.benchmark import tasks as tasks_module
from commchannels.benchmark.runner import REFERENCES, json_safe, read_results
from commchannels.benchmark.tasks import TRACKS, get_task
from commchannels.runs import atomic_write_text, save_figure, text_table, write_csv

DEFAULT_REPS = 2000
DEFAULT_SEED = 0
REFERENCE, YOURS = "reference", "yours"
STATISTICS = ("iqm", "mean", "optimality_gap")  # the aggregate's, in the order of _aggregate_stats
_EXPECTED = "a results file of `commchannels benchmark run`"


def _task_order(key: str) -> int:
    """Tasks in the order of the task list (read at call time: tests add tasks)."""
    return [task.key for task in tasks_module.TASK_LIST].index(key)


# ---------------------------------------------------------------------------- loading
def load_results(paths: Iterable[str | os.PathLike], source: str = YOURS) -> list[dict[str, Any]]:
    """Read and check result files; their rows, each with ``source`` set.

    Raises:
        ValueError: naming the file (and row) that is missing, not JSON, malformed, of another
            task version, or that repeats a (task, method, seed) run.
    """
    rows: list[dict[str, Any]] = []
    seen: dict[tuple, str] = {}
    for path in map(Path, paths):
        for i, row in enumerate(_read_rows(path)):
            where = f"{path} row {i}"
            run = (row["task"], row["method"], row["seed"])
            if run in seen:
                raise ValueError(f"{where} repeats the run {run} of {seen[run]}; expected one row per "
                                 "(task, method, seed): drop one of them")
            seen[run] = where
            rows.append({**row, "source": source})
    return rows


def _read_rows(path: Path) -> list[dict[str, Any]]:
    data = read_results(path)  # the file's format; then every row
    for i, row in enumerate(data["rows"]):
        try:
            _check_row(row)
        except ValueError as err:
            raise ValueError(f"result file {path} row {i}: {err}") from None
    return data["rows"]


def _check_row(row: Any) -> None:
    if not isinstance(row, dict):
        raise ValueError(f"a {type(row).__name__}; expected a dict")
    missing = [key for key in ("task", "track", "method", "seed", "score") if key not in row]
    if missing:
        raise ValueError(f"lacks {missing}; expected the keys of commchannels.benchmark.protocol.run_one's rows")
    task = get_task(str(row["task"]))  # unknown task or another version: get_task says which
    if row["task"] != task.key or row["track"] != task.track:
        raise ValueError(f"task {row['task']!r} on track {row['track']!r}; expected {task.key!r} on {task.track!r}")
    if not isinstance(row["method"], str) or not row["method"]:
        raise ValueError(f"method {row['method']!r}; expected a non-empty string")
    if not isinstance(row["seed"], int) or isinstance(row["seed"], bool):
        raise ValueError(f"seed {row['seed']!r}; expected an integer")
    if not _is_number(row.get(task.primary)):
        raise ValueError(f"{task.primary} (the primary metric of {task.key}) is {row.get(task.primary)!r}; "
                         "expected a number")
    # a score the task does not give would rank the method on another scale than the others
    if not _is_number(row["score"]) or abs(row["score"] - task.score(row[task.primary])) > 1e-6:
        raise ValueError(f"score {row['score']!r}; expected task.score({task.primary}) = "
                         f"{task.score(row[task.primary]):.6g} in [0, 1]")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def label(row: dict[str, Any]) -> str:
    """How a row's method is shown: its name, plus `` (source)`` when it is not a reference row."""
    source = row.get("source", REFERENCE)
    return row["method"] if source == REFERENCE else f"{row['method']} ({source})"


# ---------------------------------------------------------------------------- statistics
@contextmanager
def _seeded_global_numpy(seed: int) -> Iterator[None]:
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def _interval(matrix: np.ndarray, func: Callable[[np.ndarray], np.ndarray], reps: int, seed: int,
              confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """rliable's point estimates and (2, k) stratified bootstrap interval of ``func`` on a runs x tasks matrix."""
    from rliable import library

    with _seeded_global_numpy(seed):
        points, intervals = library.get_interval_estimates({"m": matrix}, func, reps=reps,
                                                           confidence_interval_size=confidence)
    return np.asarray(points["m"], float), np.asarray(intervals["m"], float).reshape(2, -1)


def iqm(scores: np.ndarray) -> float:
    """Interquartile mean of all entries: rliable's ``aggregate_iqm`` (scipy's ``trim_mean`` cutting
    25% at each end), without scipy's per-call argument inspection, which costs ~1 ms a call,
    i.e. seconds per interval of thousands of resamples.

    >>> iqm(np.arange(10.0))  # 2 of 10 cut at each end: the mean of 2..7
    4.5
    """
    flat = np.sort(np.asarray(scores, float), axis=None)
    cut = int(0.25 * flat.size)
    return float(flat[cut:flat.size - cut].mean())


def _aggregate_stats(scores: np.ndarray) -> np.ndarray:
    from rliable import metrics

    return np.array([iqm(scores), metrics.aggregate_mean(scores), metrics.aggregate_optimality_gap(scores, 1.0)])


def _iqm(scores: np.ndarray) -> np.ndarray:
    return np.array([iqm(scores)])


def _score_distribution(scores: np.ndarray, taus: np.ndarray) -> np.ndarray:
    # rliable's default profile (fraction of runs > tau), one comparison instead of np.vectorize over taus
    return (np.ravel(scores)[:, None] > np.asarray(taus)[None, :]).mean(axis=0)


def _common_tasks(by_label: dict[str, dict[str, dict[int, float]]], sources: dict[str, str]) -> list[str]:
    """The tasks a track's aggregate covers: those every user's method has when there are user rows
    (the user's comparison), else those of the methods that cover the most tasks."""
    yours = [name for name in by_label if sources[name] != REFERENCE]
    if yours:
        return sorted(set.intersection(*(set(by_label[name]) for name in yours)), key=_task_order)
    widest = max(len(tasks) for tasks in by_label.values())
    return sorted(next(set(t) for t in by_label.values() if len(t) == widest), key=_task_order)


def score_matrices(rows: Sequence[dict[str, Any]]) -> dict[str, tuple[list[str], dict[str, np.ndarray]]]:
    """Per track: the tasks of its aggregate (see the module docstring) and per method label that
    has them all the runs x tasks matrix of normalised scores (runs: the seeds the method has on
    all those tasks, ascending).

    A method lacking one of the tasks (or a seed common to them) is left out of its track's
    aggregate; it stays in the per-task tables. A track with no such task maps to ``([], {})``.
    """
    scores: dict[str, dict[str, dict[str, dict[int, float]]]] = defaultdict(lambda: defaultdict(dict))
    sources = {label(row): row.get("source", REFERENCE) for row in rows}
    for row in rows:
        scores[row["track"]][label(row)].setdefault(row["task"], {})[row["seed"]] = float(row["score"])
    out: dict[str, tuple[list[str], dict[str, np.ndarray]]] = {}
    for track in sorted(scores, key=TRACKS.index):
        by_label = scores[track]
        tasks = _common_tasks(by_label, sources)
        matrices: dict[str, np.ndarray] = {}
        for name in sorted(by_label) if tasks else ():
            if not set(tasks) <= set(by_label[name]):
                continue
            seeds = sorted(set.intersection(*(set(by_label[name][task]) for task in tasks)))
            if seeds:
                matrices[name] = np.array([[by_label[name][task][s] for task in tasks] for s in seeds])
        out[track] = (tasks if matrices else [], matrices)
    return out


def aggregate(rows: Sequence[dict[str, Any]], reps: int = DEFAULT_REPS, seed: int = DEFAULT_SEED,
              confidence: float = 0.95) -> list[dict[str, Any]]:
    """Per track and method: IQM, mean and optimality gap of the normalised score over the
    track's common tasks (see the module docstring), each with its stratified bootstrap interval
    (``reps`` resamples of the seeds within each task, under ``seed``); best IQM first per track."""
    if reps < 1:
        raise ValueError(f"reps={reps}; expected a positive number of bootstrap resamples")
    sources = {label(row): (row["method"], row.get("source", REFERENCE)) for row in rows}
    out: list[dict[str, Any]] = []
    for track, (tasks, matrices) in score_matrices(rows).items():
        track_rows = []
        for name, matrix in matrices.items():
            points, intervals = _interval(matrix, _aggregate_stats, reps, seed, confidence)
            entry = {"track": track, "label": name, "method": sources[name][0], "source": sources[name][1],
                     "n_tasks": len(tasks), "n_runs": len(matrix), "tasks": tasks}
            for i, stat in enumerate(STATISTICS):
                entry.update({stat: points[i], f"{stat}_low": intervals[0, i], f"{stat}_high": intervals[1, i]})
            track_rows.append(entry)
        out += sorted(track_rows, key=lambda e: -e["iqm"])
    return out


def per_task(rows: Sequence[dict[str, Any]], reps: int = DEFAULT_REPS, seed: int = DEFAULT_SEED,
             confidence: float = 0.95) -> list[dict[str, Any]]:
    """Per (task, method): IQM of the task's primary metric over seeds with its bootstrap interval,
    the per-seed values, and the mean of each reported metric (``means``; ``None`` where no seed
    has a number). In task-list order, best IQM first within a task."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[row["task"], label(row)].append(row)
    out: list[dict[str, Any]] = []
    for task_key in sorted({key for key, _ in groups}, key=_task_order):
        task = get_task(task_key)
        reported = dict.fromkeys((task.primary, *task.metrics, "score", "train_seconds"))
        task_rows = []
        for (key, name), members in groups.items():
            if key != task_key:
                continue
            members = sorted(members, key=lambda r: r["seed"])
            values = np.array([[r[task.primary]] for r in members], float)
            points, intervals = _interval(values, _iqm, reps, seed, confidence)
            means = {}
            for metric in reported:
                numbers = [r[metric] for r in members if _is_number(r.get(metric))]
                means[metric] = float(np.mean(numbers)) if numbers else None
            task_rows.append({"task": task_key, "track": task.track, "label": name, "method": members[0]["method"],
                              "source": members[0].get("source", REFERENCE), "primary": task.primary,
                              "higher_is_better": task.higher_is_better, "n_seeds": len(members),
                              "seeds": [r["seed"] for r in members], "values": values[:, 0].tolist(),
                              "iqm": points[0], "iqm_low": intervals[0, 0], "iqm_high": intervals[1, 0],
                              "means": means})
        sign = -1 if task.higher_is_better else 1
        out += sorted(task_rows, key=lambda e: sign * e["iqm"])
    return out


def performance_profiles(rows: Sequence[dict[str, Any]], reps: int = DEFAULT_REPS, seed: int = DEFAULT_SEED,
                         taus: np.ndarray | None = None) -> dict[str, tuple[np.ndarray, dict, dict]]:
    """Per track: ``(taus, profiles, intervals)``, rliable's score distributions (fraction of
    runs with normalised score > tau) over the track's common tasks, with bootstrap intervals."""
    from rliable import library

    taus = np.linspace(0.0, 1.0, 101) if taus is None else taus
    out = {}
    for track, (_, matrices) in score_matrices(rows).items():
        profiles, intervals = {}, {}
        for name, matrix in matrices.items():
            with _seeded_global_numpy(seed):
                p, i = library.create_performance_profile({name: matrix}, taus, reps=reps,
                                                          custom_profile_func=_score_distribution)
            profiles[name], intervals[name] = p[name], i[name]
        if profiles:
            out[track] = (taus, profiles, intervals)
    return out


# ---------------------------------------------------------------------------- plots
def _colors(labels: Iterable[str]) -> dict[str, Any]:
    """One colour per method label, the same in every figure."""
    import matplotlib

    labels = sorted(set(labels))
    cmap = matplotlib.colormaps["tab10" if len(labels) <= 10 else "tab20"]
    return {name: cmap(i % cmap.N) for i, name in enumerate(labels)}


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_performance_profiles(profiles: dict[str, tuple[np.ndarray, dict, dict]], colors: dict[str, Any],
                              path: Path) -> Path:
    """One panel per track: rliable's profile curves with their bootstrap bands."""
    from rliable import plot_utils

    plt = _pyplot()
    fig, axes = plt.subplots(1, max(1, len(profiles)), figsize=(5.5 * max(1, len(profiles)), 4.2), squeeze=False)
    for ax, (track, (taus, curves, intervals)) in zip(axes[0], profiles.items()):
        plot_utils.plot_performance_profiles(curves, taus, performance_profile_cis=intervals, colors=colors, ax=ax,
                                             xlabel=r"normalised score $\tau$", ylabel=r"fraction of runs > $\tau$",
                                             labelsize="medium", ticklabelsize="medium")
        ax.set_title(track)
        ax.legend(fontsize="small", loc="lower left")
    if not profiles:
        axes[0, 0].text(0.5, 0.5, "no task common to the methods of any track", ha="center")
    return save_figure(fig, path, dpi=120)


def plot_aggregate(entries: Sequence[dict[str, Any]], colors: dict[str, Any], path: Path) -> Path:
    """IQM, mean and optimality gap with their intervals (rliable's interval plot, one row of
    panels per track: the methods differ between tracks)."""
    plt = _pyplot()
    tracks = [t for t in TRACKS if any(e["track"] == t for e in entries)] or ["none"]
    heights = [max(1, sum(e["track"] == t for e in entries)) for t in tracks]
    fig, axes = plt.subplots(len(tracks), len(STATISTICS), squeeze=False, gridspec_kw={"height_ratios": heights},
                             figsize=(11, 1.0 + 0.45 * sum(heights) + 0.6 * len(tracks)))
    for row, track in enumerate(tracks):
        mine = [e for e in entries if e["track"] == track][::-1]  # best at the top
        for col, stat in enumerate(STATISTICS):
            ax = axes[row, col]
            for y, e in enumerate(mine):
                ax.barh(y, e[f"{stat}_high"] - e[f"{stat}_low"], left=e[f"{stat}_low"], height=0.6,
                        color=colors[e["label"]], alpha=0.75)
                ax.vlines(e[stat], y - 0.3, y + 0.3, color="black", linewidth=1.5)
            ax.set_yticks(range(len(mine)), [e["label"] for e in mine] if col == 0 else [])
            ax.set_xlim(-0.02, 1.02)
            ax.grid(axis="x", alpha=0.3)
            title = stat.replace("_", " ") + (" (lower is better)" if stat == "optimality_gap" else "")
            ax.set_title(f"{track}: {title}" if col == 0 else title, fontsize="medium")
        n_tasks = mine[0]["n_tasks"] if mine else 0
        axes[row, 0].set_ylabel(f"{n_tasks} task{'s' * (n_tasks > 1)}")
    for ax in axes[-1]:
        ax.set_xlabel("normalised score (95% CI)")
    return save_figure(fig, path, dpi=120)


def plot_task(entries: Sequence[dict[str, Any]], colors: dict[str, Any], path: Path) -> Path:
    """One task: per method the primary metric's IQM with its interval, and every seed as a dot."""
    plt = _pyplot()
    task = get_task(entries[0]["task"])
    mine = list(entries)[::-1]  # best at the top
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.45 * len(mine)))
    jitter = np.random.default_rng(0)
    for y, e in enumerate(mine):
        ax.errorbar(e["iqm"], y, xerr=[[e["iqm"] - e["iqm_low"]], [e["iqm_high"] - e["iqm"]]], fmt="D",
                    color=colors[e["label"]], capsize=4, markersize=7, zorder=3)
        ax.scatter(e["values"], y + jitter.uniform(-0.18, 0.18, len(e["values"])), s=14, color="black",
                   alpha=0.5, zorder=4)
    for value, name in ((task.chance, "chance"), (task.best, "best")):
        ax.axvline(value, color="grey", linestyle=":", linewidth=1)
        ax.annotate(name, (value, len(mine) - 0.5), fontsize="small", color="grey", ha="center")
    ax.set_yticks(range(len(mine)), [e["label"] for e in mine])
    ax.set_ylim(-0.6, len(mine) - 0.2)
    span = [task.chance, task.best, *(v for e in mine for v in e["values"])]
    margin = 0.04 * (max(span) - min(span))
    ax.set_xlim(min(span) - margin, max(span) + margin)
    direction = "higher" if task.higher_is_better else "lower"
    ax.set_xlabel(f"{task.primary} ({direction} is better): IQM over seeds, 95% CI; dots: seeds")
    ax.set_title(task.key)
    ax.grid(axis="x", alpha=0.3)
    return save_figure(fig, path, dpi=120)


# ---------------------------------------------------------------------------- tables
def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.3f}" if abs(value) < 100 else f"{value:.4g}"


def _with_ci(entry: dict[str, Any], stat: str) -> str:
    return f"{_fmt(entry[stat])} [{_fmt(entry[f'{stat}_low'])}, {_fmt(entry[f'{stat}_high'])}]"


def format_report(aggregates: Sequence[dict[str, Any]], tasks: Sequence[dict[str, Any]],
                  rows: Sequence[dict[str, Any]], reps: int) -> str:
    """The text tables: the aggregate per track, then one table per task."""
    parts = [f"Aggregate normalised score (0: chance, 1: best) per track, over the tasks your methods ran (the "
             f"references alone: the tasks of the methods that cover the most); IQM, mean and optimality gap over "
             f"seeds x tasks with 95% stratified bootstrap CIs ({reps} resamples)."]
    for track in sorted({r["track"] for r in rows}, key=TRACKS.index):
        mine = [e for e in aggregates if e["track"] == track]
        seen = sorted({label(r) for r in rows if r["track"] == track})
        if not mine:
            parts.append(f"\n{track}: no task is common to all of {seen}; see the per-task tables.")
            continue
        common = mine[0]["tasks"]  # every aggregate row of a track covers the same tasks
        left_out = sorted(set(seen) - {e["label"] for e in mine})
        note = f"; left out (lacking one of these tasks or a seed on all): {left_out}" if left_out else ""
        parts.append(f"\n{track}: {len(common)} task{'s' * (len(common) > 1)} ({', '.join(common)}){note}")
        parts.append(text_table(["method", "source", "runs", "IQM [95% CI]", "mean [95% CI]", "opt. gap [95% CI]"],
                            [[e["label"], e["source"], str(e["n_runs"]), *(_with_ci(e, s) for s in STATISTICS)]
                             for e in mine]))
    for task_key in dict.fromkeys(e["task"] for e in tasks):
        task = get_task(task_key)
        mine = [e for e in tasks if e["task"] == task_key]
        metrics = [m for m in mine[0]["means"] if any(e["means"][m] is not None for e in mine)]
        direction = "higher" if task.higher_is_better else "lower"
        parts.append(f"\n{task_key}: {task.primary} ({direction} is better; chance {_fmt(task.chance)}, best "
                     f"{_fmt(task.best)}); other columns are means over seeds")
        parts.append(text_table(["method", "source", "seeds", f"{task.primary} IQM [95% CI]", *metrics],
                            [[e["label"], e["source"], str(e["n_seeds"]), _with_ci(e, "iqm"),
                              *(_fmt(e["means"][m]) for m in metrics)] for e in mine]))
    return "\n".join(parts)


def _tidy(aggregates: Sequence[dict[str, Any]], tasks: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Both tables in one long CSV: one row per (table, track, task, method, statistic)."""
    out = []
    for e in aggregates:
        common = {"table": "aggregate", "track": e["track"], "task": ";".join(e["tasks"]), "method": e["method"],
                  "source": e["source"], "n": e["n_runs"]}
        out += [{**common, "statistic": stat, "value": e[stat], "low": e[f"{stat}_low"], "high": e[f"{stat}_high"]}
                for stat in STATISTICS]
    for e in tasks:
        common = {"table": "task", "track": e["track"], "task": e["task"], "method": e["method"],
                  "source": e["source"], "n": e["n_seeds"]}
        out.append({**common, "statistic": f"iqm_{e['primary']}", "value": e["iqm"], "low": e["iqm_low"],
                    "high": e["iqm_high"]})
        out += [{**common, "statistic": f"mean_{m}", "value": v, "low": None, "high": None}
                for m, v in e["means"].items() if v is not None]
    return out


# ---------------------------------------------------------------------------- report
def report(result_paths: Sequence[str | os.PathLike], out_dir: str | os.PathLike,
           references: bool | str | os.PathLike = True, reps: int = DEFAULT_REPS, seed: int = DEFAULT_SEED) -> str:
    """Compare results with the reference scores: write ``report.json``, ``report.csv`` (long
    format), ``performance_profiles.png``, ``aggregate.png`` and ``task_<name>_v<version>.png``
    under ``out_dir``, and return the text tables.

    Args:
        result_paths: result files (``{"tasks_version", "machine", "rows"}``); their rows are
            the source ``yours``.
        out_dir: where the files go (created).
        references: ``True`` for :data:`REFERENCES`, a path for another reference file, ``False``
            for the given results alone.
        reps: bootstrap resamples per interval.
        seed: seed of every bootstrap (the same intervals on every call).
    """
    reference_path = REFERENCES if references is True else Path(references) if references else None
    if reference_path is not None and not reference_path.is_file():
        raise ValueError(f"no reference file at {reference_path}; expected the reference scores "
                         "(`commchannels benchmark references` writes them), or report without references")
    rows = load_results(result_paths)
    if reference_path is not None:
        rows += load_results([reference_path], source=REFERENCE)
    if not rows:
        raise ValueError(f"no result rows in {list(map(str, result_paths))} (nor references); expected {_EXPECTED}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    aggregates, tasks = aggregate(rows, reps, seed), per_task(rows, reps, seed)
    colors = _colors(label(r) for r in rows)
    written = [plot_performance_profiles(performance_profiles(rows, reps, seed), colors,
                                         out / "performance_profiles.png"),
               plot_aggregate(aggregates, colors, out / "aggregate.png")]
    for task_key in dict.fromkeys(e["task"] for e in tasks):
        name, _, version = task_key.partition("@")
        written.append(plot_task([e for e in tasks if e["task"] == task_key], colors,
                                 out / f"task_{name}_v{version}.png"))
    files = {"results": [str(p) for p in result_paths], "references": str(reference_path or "")}
    atomic_write_text(out / "report.json", json.dumps(json_safe(
        {"files": files, "reps": reps, "seed": seed, "aggregate": aggregates, "per_task": tasks}), indent=1))
    write_csv(out / "report.csv", json_safe(_tidy(aggregates, tasks)))
    text = format_report(aggregates, tasks, rows, reps)
    names = ", ".join(p.name for p in [out / "report.json", out / "report.csv", *written])
    return f"{text}\n\nwrote {names} to {out}"


def comparison_table(rows: Sequence[dict[str, Any]], reps: int = DEFAULT_REPS, seed: int = DEFAULT_SEED) -> str:
    """The tables of :func:`report` for a run's ``rows`` beside the reference rows of the same
    tasks (nothing written): what ``commchannels benchmark run`` prints."""
    rows = [{**row, "source": YOURS} for row in rows]
    tasks = {row["task"] for row in rows}
    if REFERENCES.is_file():
        rows += [row for row in load_results([REFERENCES], source=REFERENCE) if row["task"] in tasks]
    return format_report(aggregate(rows, reps, seed), per_task(rows, reps, seed), rows, reps)
