"""Running methods under the protocol: result files, resuming, and the reference set.

A results file is JSON: ``{"format": "commchannels.benchmark", "tasks_version", "machine",
"rows": [...]}``, one row per (task, method, seed) (:func:`commchannels.benchmark.protocol.run_one`).
It is rewritten atomically after every row, so an interrupted run loses at most the row in
progress, and running the same command again skips the rows already there (same task version,
method and seed). The reference scores (:data:`REFERENCES`) are such a file, made by
:func:`references`: every built-in method on every task it applies to, on
:data:`~commchannels.benchmark.tasks.DEFAULT_SEEDS`.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import torch

from commchannels.benchmark.protocol import resolve_method, run_one
from commchannels.benchmark.tasks import TASKS_VERSION, Task
from commchannels.runs import atomic_write_text, progress

FORMAT = "commchannels.benchmark"
REFERENCES = Path(__file__).resolve().parent / "references.json"
Unit = tuple[Task, str, int]  # (task, method, seed)


def machine() -> dict[str, Any]:
    """What the rows were measured on (wall-clock seconds only mean something with it)."""
    return {"cpu_count": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "platform": platform.platform(), "date": time.strftime("%Y-%m-%d %H:%M:%S")}


def read_results(path: str | Path) -> dict[str, Any]:
    """A results file (``ValueError`` naming the file when it is not one)."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"results file {str(path)!r} does not exist") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"results file {str(path)!r} is not JSON ({err})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT or not isinstance(payload.get("rows"), list):
        raise ValueError(f"{str(path)!r} is not a commchannels benchmark results file (expected format {FORMAT!r} "
                         "with a list of rows, as written by commchannels benchmark run)")
    return payload


def write_results(path: str | Path, rows: Sequence[dict[str, Any]], **extra: Any) -> None:
    payload = {"format": FORMAT, "tasks_version": TASKS_VERSION, "machine": machine(), **extra, "rows": list(rows)}
    atomic_write_text(path, json.dumps(payload, indent=1, allow_nan=False) + "\n")


def plan(methods: Sequence[str], tasks: Sequence[Task], seeds: Sequence[int]) -> list[Unit]:
    """Every (task, method, seed) that applies; resolving each method now makes a bad one fail at
    once, before anything trains."""
    units = []
    for task in tasks:
        for method in methods:
            if resolve_method(method, task) is not None:
                units += [(task, method, seed) for seed in seeds]
    return units


def _run_unit(unit: Unit, threads: int) -> dict[str, Any]:
    task, method, seed = unit
    row = run_one(task, method, seed, threads=threads)
    assert row is not None  # plan() kept only the units that apply
    return row


def run_units(units: Sequence[Unit], out: str | Path | None, jobs: int = 1, threads: int = 1,
              show_progress: bool = True, **extra: Any) -> list[dict[str, Any]]:
    """Run ``units`` (``jobs`` processes at a time, ``threads`` torch threads each), skipping those
    already in ``out``; rows are written to ``out`` as they finish. Returns every row of ``out``."""
    rows: list[dict[str, Any]] = []
    if out is not None and Path(out).exists():
        rows = [row for row in read_results(out)["rows"]]
    done = {(row["task"], row["method"], row["seed"]) for row in rows}
    todo = [u for u in units if (u[0].key, u[1], u[2]) not in done]
    start = time.perf_counter()
    bar = progress(total=len(todo), desc="benchmark", enabled=show_progress)

    def record(row: dict[str, Any]) -> None:
        rows.append(row)
        bar.update(1)
        bar.set_postfix(task=row["task"], method=row["method"], score=f"{row['score']:.3f}")
        if out is not None:
            write_results(out, _ordered(rows), **extra)

    if jobs <= 1:
        for unit in todo:
            record(_run_unit(unit, threads))
    else:
        # spawn: a forked child would inherit torch's thread pools and locks from this process
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(_run_unit, unit, threads) for unit in todo]
            for future in futures:
                record(future.result())
    bar.close()
    if out is not None:
        write_results(out, _ordered(rows), **extra)
    if todo:
        print(f"ran {len(todo)} (task, method, seed) runs in {time.perf_counter() - start:.0f} s"
              + (f"; results in {out}" if out is not None else ""))
    return _ordered(rows)


def _ordered(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (r["task"], r["method"], r["seed"]))


def reference_units(tasks: Sequence[Task], seeds: Sequence[int]) -> list[Unit]:
    """Every task's reference methods, on every seed."""
    return [(task, method, seed) for task in tasks for method in task.reference_methods for seed in seeds]


def references(tasks: Sequence[Task], seeds: Sequence[int], out: str | Path = REFERENCES, jobs: int = 2,
               show_progress: bool = True) -> list[dict[str, Any]]:
    """Regenerate the reference scores (continuing an interrupted regeneration in ``out``)."""
    start = time.perf_counter()
    rows = run_units(reference_units(tasks, seeds), out, jobs=jobs, show_progress=show_progress,
                     command="commchannels benchmark references")
    payload = read_results(out)
    payload["wall_seconds"] = payload.get("wall_seconds", 0.0) + time.perf_counter() - start
    write_results(out, rows, command=payload["command"], jobs=jobs, wall_seconds=payload["wall_seconds"])
    return rows
