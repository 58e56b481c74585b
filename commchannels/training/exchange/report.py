"""Plots, the summary table and the files of a comparison of methods (``--method all``, the benchmark)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from commchannels.runs import atomic_write_text, plot_curves, write_csv
from commchannels.training.result import Result

AXES = (("step", "steps", "accuracy_vs_steps.png", False),
        ("wall_time", "wall time (s, excluding evaluation)", "accuracy_vs_time.png", False),
        ("bytes_sent", "bytes sent by all workers", "accuracy_vs_bytes.png", True))


def plot_results(run_dir: str | Path, results: Mapping[str, Result]) -> list[Path]:
    """Test accuracy against steps, wall time and bytes sent, one curve per run."""
    paths = []
    for key, xlabel, name, logx in AXES:
        series = {}
        for label, result in results.items():
            rows = [r for r in result.history if "test_acc" in r]
            # log axes cannot show 0 bytes (codistillation before its first exchange)
            xs = [max(r[key], 1) if logx else r[key] for r in rows]
            series[label] = (xs, [r["test_acc"] for r in rows])
        paths.append(plot_curves(Path(run_dir) / name, series, xlabel, "test accuracy (mean over workers)",
                                 logx=logx))
    return paths


def steps_to_reach(history: Sequence[Mapping[str, Any]], target: float) -> int | None:
    """First logged step whose mean test accuracy reaches ``target`` (``None`` if never)."""
    return next((r["step"] for r in history if r.get("test_acc", -1) >= target), None)


def time_at(row: Mapping[str, Any], bandwidth: float, latency: float, compute_speedup: float = 1.0) -> float:
    """A logged row's simulated time on another link (bits/s, s/message): the network model is
    linear in the logged critical-path messages and bytes (see :mod:`.comm`). ``compute_speedup``
    prices the compute as on hardware that many times faster than the one that measured it."""
    if compute_speedup <= 0:
        raise ValueError(f"compute_speedup={compute_speedup!r}; expected a positive factor (1: as measured)")
    return (row["compute_time"] / compute_speedup + latency * row["link_messages"]
            + 8 * row["link_bytes"] / bandwidth)


def reach(history: Sequence[Mapping[str, Any]], target: float, bandwidth: float,
          latency: float, compute_speedup: float = 1.0) -> dict[str, float] | None:
    """Step, bytes sent and simulated time of the first evaluation at or above ``target`` test
    accuracy (``None`` if never)."""
    row = next((r for r in history if r.get("test_acc", -1) >= target), None)
    if row is None:
        return None
    return {"step": row["step"], "bytes_sent": row["bytes_sent"],
            "sim_time": time_at(row, bandwidth, latency, compute_speedup)}


def summary_rows(results: Mapping[str, Result], reference: str = "sync-sgd") -> list[dict[str, Any]]:
    """One row per method: accuracy, bytes (and the ratio to ``reference``), steps to 90% of the
    reference's final accuracy, wall time."""
    ref = results.get(reference)
    target = 0.9 * ref.final["test_acc"] if ref else None
    rows = []
    for method, result in results.items():
        f = result.final
        row = {"method": method, "test_acc": f["test_acc"], "test_acc_min": f["test_acc_min"],
               "bytes_sent": f["bytes_sent"], "bytes_received": f["bytes_received"],
               "wall_time": f["wall_time"]}
        if ref is not None:
            sent = f["bytes_sent"]
            row["bytes_fraction_of_sync"] = sent / ref.final["bytes_sent"] if ref.final["bytes_sent"] else None
            row["steps_to_90pct_sync"] = steps_to_reach(result.history, target)
            row["acc_minus_sync"] = f["test_acc"] - ref.final["test_acc"]
        if "staleness" in f:
            row["staleness"] = f["staleness"]
        rows.append(row)
    return rows


def format_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """A fixed-width text table of :func:`summary_rows`."""
    head = f"{'method':<12} {'test acc':>8} {'min':>6} {'MB sent':>9} {'x sync':>9} " \
           f"{'steps@90%':>9} {'wall s':>7}"
    lines = [head, "-" * len(head)]
    for r in rows:
        frac = r.get("bytes_fraction_of_sync")
        ratio = "-" if frac is None else f"1/{1 / frac:.0f}" if 0 < frac < 1 else f"{frac:.2g}"
        reach = r.get("steps_to_90pct_sync")
        lines.append(f"{r['method']:<12} {r['test_acc']:>8.4f} {r['test_acc_min']:>6.3f} "
                     f"{r['bytes_sent'] / 1e6:>9.3f} {ratio:>9} {'-' if reach is None else f'{reach:.0f}':>9} "
                     f"{r['wall_time']:>7.1f}")
    return "\n".join(lines)


def write_comparison(run_dir: str | Path | None, results: Mapping[str, Result]) -> list[dict[str, Any]]:
    """The summary rows of a comparison of methods; with a run folder, also ``summary.{json,csv}``
    and the plots of every method's curve."""
    rows = summary_rows(results)
    if run_dir is not None:
        atomic_write_text(Path(run_dir) / "summary.json", json.dumps(rows, indent=2))
        write_csv(Path(run_dir) / "summary.csv", rows)
        plot_results(run_dir, results)
    return rows


def summarize_result(result: Result) -> str:
    """Text shown by the CLI at the end of a run."""
    if "rows" in result.extras:
        return format_table(result.extras["rows"])
    if not result.final:
        return ""
    f = result.final
    text = (f"test accuracy {f['test_acc']:.4f} (workers {f['test_acc_min']:.4f}..{f['test_acc_max']:.4f}), "
            f"{f['bytes_sent']:,} bytes sent, {f['bytes_received']:,} received, "
            f"{f['wall_time']:.1f} s")
    if "staleness" in f:
        text += f", mean staleness {f['staleness']:.2f}"
    if "sim_time" in f:
        text += f", simulated time {f['sim_time']:.1f} s on the configured link"
    if "val_acc" in f:
        text += f", validation accuracy {f['val_acc']:.4f}"
    return text + (f"\nrun folder: {result.run_dir}" if result.run_dir else "")
