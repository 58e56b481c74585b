"""Run folders: config, metrics (JSON lines + CSV), TensorBoard logs, plots, checkpoints.

A run folder holds ``config.json``, ``metrics.jsonl`` (one JSON object per logged step,
appended as training goes so a crash loses nothing), ``metrics.csv`` (rewritten on close),
``tb/`` (TensorBoard event files), ``checkpoint.pt`` and PNG plots. Checkpoints are written
atomically (temporary file, then ``os.replace``) and loaded with ``weights_only=True``.
"""

from __future__ import annotations

import csv
import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from commchannels.config import config_to_dict


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old or the new file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Text version of :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode())


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any]) -> None:
    """Save a dict of tensors / plain values atomically with ``torch.save``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(dict(state), tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` without unpickling code."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    return torch.load(path, map_location="cpu", weights_only=True)


def _finite(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class RunLogger:
    """Writes a run folder. Use as a context manager; ``close`` writes the CSV.

    Args:
        run_dir: folder to create (parents too). ``None`` logs nothing to disk.
        config: the run's dataclass config, saved as ``config.json``.
        tensorboard: also write TensorBoard event files under ``run_dir/tb``.
        resume: keep the metrics already in ``run_dir`` (a resumed run appends).
    """

    def __init__(
        self,
        run_dir: str | os.PathLike | None,
        config: Any = None,
        tensorboard: bool = True,
        resume: bool = False,
    ) -> None:
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.rows: list[dict[str, Any]] = []
        self._writer = None
        if self.run_dir is None:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if config is not None:
            atomic_write_text(self.run_dir / "config.json", json.dumps(config_to_dict(config), indent=2))
        jsonl = self.run_dir / "metrics.jsonl"
        if resume and jsonl.exists():
            self.rows = [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
        else:
            jsonl.write_text("")
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.run_dir / "tb"))

    def log(self, step: int, metrics: Mapping[str, Any]) -> dict[str, Any]:
        """Record ``metrics`` at ``step``; returns the stored row."""
        row = {"step": int(step), **{k: _finite(v) for k, v in metrics.items()}}
        self.rows.append(row)
        if self.run_dir is not None:
            with open(self.run_dir / "metrics.jsonl", "a") as handle:
                handle.write(json.dumps(row) + "\n")
        if self._writer is not None:
            for key, value in row.items():
                if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
                    self._writer.add_scalar(key, value, int(step))
        return row

    def write_json(self, name: str, data: Any) -> Path | None:
        """Write ``data`` as ``run_dir/name`` atomically (e.g. a summary)."""
        if self.run_dir is None:
            return None
        path = self.run_dir / name
        atomic_write_text(path, json.dumps(data, indent=2, default=str))
        return path

    def close(self) -> None:
        """Flush TensorBoard and write ``metrics.csv``."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self.run_dir is not None and self.rows:
            write_csv(self.run_dir / "metrics.csv", self.rows)

    def __enter__(self) -> RunLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_csv(path: str | os.PathLike, rows: Sequence[Mapping[str, Any]]) -> None:
    """Write rows (dicts, keys may differ between rows) as a CSV with the union of keys."""
    keys: list[str] = []
    for row in rows:
        keys.extend(k for k in row if k not in keys)
    with tempfile.NamedTemporaryFile("w", dir=Path(path).parent, delete=False, newline="") as tmp:
        writer = csv.DictWriter(tmp, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp.name, path)


def plot_curves(
    path: str | os.PathLike,
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    xlabel: str,
    ylabel: str,
    title: str = "",
    logx: bool = False,
) -> Path:
    """Save a line plot of ``{label: (xs, ys)}`` as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for label, (xs, ys) in series.items():
        points = [(x, y) for x, y in zip(xs, ys) if y is not None]
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logx:
        ax.set_xscale("log")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    if series:
        ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def progress(iterable: Any = None, total: int | None = None, desc: str = "", enabled: bool = True):
    """A tqdm progress bar (silent when not a terminal or ``enabled`` is False)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, disable=None if enabled else True, dynamic_ncols=True)
