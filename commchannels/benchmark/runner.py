"""Running methods under the protocol: result files, resuming, and the reference set.

A results file is JSON: ``{"format": "commchannels.benchmark", "tasks_version", "machine",
"rows": [...]}``, one row per (task, method, seed) (:func:`commchannels.benchmark.protocol.run_one`).
It is rewritten atomically as each row finishes, so an interrupted run loses only the rows in
progress, and running the same command again skips the rows already there (same task version,
method and seed). Rows of a task version that no longer exists are dropped, saying so. A lock
(``FILE.lock``) keeps two runs from writing one file. The reference scores (:data:`REFERENCES`)
are such a file, made by :func:`references`: every task's ``reference_methods`` on
:data:`~commchannels.benchmark.tasks.DEFAULT_SEEDS`.
"""

from __future__ import annotations

import fcntl
import json
import math
import multiprocessing
import os
import platform
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from commchannels.benchmark import tasks as task_list
from commchannels.benchmark.protocol import import_task_modules, method_label, resolve_method, run_one
from commchannels.benchmark.tasks import TASKS_VERSION, Task
from commchannels.runs import atomic_write_text, progress

FORMAT = "commchannels.benchmark"
REFERENCES = Path(__file__).resolve().parent / "references.json"
Unit = tuple[Task, str, int, str]  # (task, method, seed, label in the rows)


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
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"results file {str(path)!r} is not JSON ({err})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT or not isinstance(payload.get("rows"), list):
        raise ValueError(f"{str(path)!r} is not a commchannels benchmark results file (expected format {FORMAT!r} "
                         "with a list of rows, as written by commchannels benchmark run)")
    return payload


def json_safe(value: Any) -> Any:
    """``value`` with numpy numbers as Python numbers and NaN / infinities as ``None`` (JSON has
    no such numbers), through dicts, lists and tuples."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    return None if isinstance(value, float) and not math.isfinite(value) else value


def write_results(path: str | Path, rows: Sequence[dict[str, Any]], **extra: Any) -> None:
    """Write a results file atomically (``extra``: more top-level fields)."""
    payload = {"format": FORMAT, "tasks_version": TASKS_VERSION, "machine": machine(), **extra, "rows": list(rows)}
    atomic_write_text(path, json.dumps(json_safe(payload), indent=1, allow_nan=False) + "\n")


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold ``PATH.lock`` (released by the kernel even if this process dies)."""
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(f"another benchmark run is writing {str(path)!r}; wait for it or use another --out") \
                from None
        yield


def plan(methods: Sequence[str], tasks: Sequence[Task], seeds: Sequence[int],
         labels: Sequence[str] | None = None) -> list[Unit]:
    """Every (task, method, seed) that applies, once, with the method's label (``labels``, one
    per method; default :func:`~commchannels.benchmark.protocol.method_label`). Methods and the
    tasks' games are resolved now, so a bad one fails at once, before anything trains."""
    labels = list(labels) if labels is not None else [method_label(method) for method in methods]
    if len(labels) != len(methods) or len(set(labels)) != len(labels):
        raise ValueError(f"labels {labels} do not name the methods {list(methods)} one each, uniquely")
    seeds = list(dict.fromkeys(seeds))
    units = []
    for task in tasks:
        import_task_modules(task)
        for method, label in dict.fromkeys(zip(methods, labels)):
            if resolve_method(method, task) is not None:
                units += [(task, method, seed, label) for seed in seeds]
    return units


def _run_unit(unit: Unit, threads: int) -> dict[str, Any]:
    task, method, seed, label = unit
    row = run_one(task, method, seed, threads=threads, label=label)
    if row is None:  # plan() keeps only the units that apply
        raise RuntimeError(f"method {method!r} does not apply to task {task.key}")
    return row


def _current_rows(rows: list[dict[str, Any]], path: Path) -> list[dict[str, Any]]:
    current = {task.key for task in task_list.TASK_LIST}
    stale = sorted({row["task"] for row in rows if row.get("task") not in current})
    if stale:
        print(f"dropping the rows of {stale} from {path}: no such task version now")
    return [row for row in rows if row.get("task") in current]


def run_units(units: Sequence[Unit], out: str | Path, jobs: int = 1, threads: int = 1,
              show_progress: bool = True, **extra: Any) -> list[dict[str, Any]]:
    """Run ``units`` (``jobs`` processes at a time, ``threads`` torch threads each), skipping those
    already in ``out``; each row is written to ``out`` as it finishes. Returns every row of ``out``."""
    out = Path(out)
    with _locked(out):
        rows = _current_rows(read_results(out)["rows"], out) if out.exists() else []
        done = {(row["task"], row["method"], row["seed"]) for row in rows}
        todo = [u for u in units if (u[0].key, u[3], u[2]) not in done]
        start = time.perf_counter()
        bar = progress(total=len(todo), desc="benchmark", enabled=show_progress)

        def record(row: dict[str, Any]) -> None:
            rows.append(row)
            bar.update(1)
            bar.set_postfix(task=row["task"], method=row["method"], score=f"{row['score']:.3f}")
            write_results(out, _ordered(rows), **extra)

        try:
            if jobs <= 1:
                for unit in todo:
                    record(_run_unit(unit, threads))
            else:
                # spawn: a forked child would inherit torch's thread pools and locks from this process
                with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
                    futures = [pool.submit(_run_unit, unit, threads) for unit in todo]
                    try:
                        for future in as_completed(futures):
                            record(future.result())
                    except BaseException:
                        pool.shutdown(wait=True, cancel_futures=True)  # keep what the running units finish
                        for future in futures:
                            if future.done() and not future.cancelled() and future.exception() is None \
                                    and future.result() not in rows:
                                record(future.result())
                        raise
        finally:
            bar.close()
        write_results(out, _ordered(rows), **extra)
    if todo:
        print(f"ran {len(todo)} (task, method, seed) runs in {time.perf_counter() - start:.0f} s; results in {out}")
    return _ordered(rows)


def _ordered(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (r["task"], r["method"], r["seed"]))


def reference_units(tasks: Sequence[Task], seeds: Sequence[int]) -> list[Unit]:
    """Every task's reference methods, on every seed."""
    return [(task, method, seed, method) for task in tasks for method in task.reference_methods for seed in seeds]


def references(tasks: Sequence[Task], seeds: Sequence[int], out: str | Path = REFERENCES, jobs: int = 2,
               threads: int = 1, show_progress: bool = True) -> list[dict[str, Any]]:
    """Regenerate the reference scores (continuing an interrupted regeneration in ``out``; the
    other tasks' rows are kept). ``wall_seconds`` in the file adds up the time of every call."""
    out = Path(out)
    before = read_results(out).get("wall_seconds", 0.0) if out.exists() else 0.0
    start = time.perf_counter()
    command = "commchannels benchmark references"
    run_units(reference_units(tasks, seeds), out, jobs=jobs, threads=threads, show_progress=show_progress,
              wall_seconds=before, command=command)
    rows = read_results(out)["rows"]
    write_results(out, rows, wall_seconds=before + time.perf_counter() - start, command=command)
    return rows
