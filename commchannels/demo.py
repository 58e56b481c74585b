"""``commchannels demo``: the standard referential game learnt two ways, compared in one table.

A sender describes objects of 4 attributes x 8 values to a receiver that must pick them among
5 candidates, with messages of up to 4 symbols from 16 (0 = EOS). The same game is trained
with Gumbel-Softmax (gradients through relaxed symbols) and with REINFORCE (sampled symbols),
each for the same wall-clock budget; the table shows how accurate and how compositional the
resulting languages are, on training objects and on held-out attribute combinations.
Run folders (metrics, TensorBoard, learning curves, ``language.pt``) go under ``run_dir``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from commchannels.run_folder import RunOptions
from commchannels.runs import text_table
from commchannels.training.referential import Config, train

METHODS = ("gumbel", "reinforce")
TARGETS = (0.9, 0.95, 0.99)


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """Rows as an aligned text table (``None`` shown as ``-``)."""

    def cell(value: Any) -> str:
        if value is None:
            return "-"
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    return text_table(columns, [[cell(row.get(c)) for c in columns] for row in rows], right=True)


def run_demo(run_dir: str, seconds: float) -> list[dict[str, Any]]:
    """Train the standard game with each method for ``seconds`` of wall time and print a table.

    Args:
        run_dir: parent folder; each method writes ``run_dir/<method>``.
        seconds: wall-clock budget per method (> 0).

    Returns:
        One row per method (also printed).
    """
    if not seconds > 0:
        raise ValueError(f"seconds={seconds} is invalid; expected a positive wall-clock budget")
    rows = []
    for method in METHODS:
        print(f"training {method} for up to {seconds:g} s ...", flush=True)
        cfg = Config(method=method, max_seconds=seconds, steps=10**9, targets=TARGETS,  # a demo rerun replaces
                     run=RunOptions(run_dir=str(Path(run_dir) / method), overwrite=True))  # its own runs
        final = train(cfg).final
        row = {"method": method, "train acc": final.get("train_acc"), "held-out acc": final.get("test_acc"),
               "topsim": final.get("topsim"), "posdis": final.get("posdis"),
               "seconds": f"{final['seconds']:.1f}"}
        for target in TARGETS:
            reached = final.get(f"seconds_to_{target * 100:g}")
            row[f"s to {target * 100:g}%"] = None if reached is None else f"{reached:.1f}"
        rows.append(row)
    print()
    print(format_table(rows, list(rows[0])))
    print(f"\nruns in {run_dir}/ (try `commchannels analyse {Path(run_dir) / METHODS[0]}` "
          f"or `tensorboard --logdir {run_dir}`)")
    return rows
