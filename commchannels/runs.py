"""Files of a run: atomic writes, checkpoints, metrics (JSON lines + CSV), TensorBoard, plots.

Metrics go to ``metrics.jsonl`` (one JSON object per logged step, appended as training goes so
a crash loses nothing), ``metrics.csv`` (rewritten on close) and ``tb/`` (TensorBoard event
files). Checkpoints and summaries are written atomically (temporary file, then ``os.replace``),
with the permissions the umask gives new files, and checkpoints are loaded with
``weights_only=True``. The folder itself (refusal, lock, run id, resume) is
:mod:`commchannels.run_folder`'s.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch


def new_file_mode() -> int:
    """The mode ``open()`` gives a new file under the current umask (0644 under umask 022);
    ``mkstemp`` creates 0600, which :func:`atomic_write_bytes` widens to this."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old or the new file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, new_file_mode())
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
    os.fchmod(fd, new_file_mode())
    os.close(fd)
    try:
        torch.save(dict(state), tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class CorruptCheckpointError(ValueError):
    """A checkpoint that cannot be read (truncated, not a torch file, or holding code)."""


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` without unpickling code.

    Raises:
        FileNotFoundError: no file at ``path``.
        CorruptCheckpointError: the file is truncated, not a checkpoint, or needs code to load.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises UnpicklingError, RuntimeError, EOFError, ... by cause
        reason = type(err).__name__ + (f": {str(err).strip().splitlines()[0][:120]}" if str(err).strip() else "")
        raise CorruptCheckpointError(f"checkpoint {str(path)!r} cannot be read ({reason}); expected a file "
                                     "written by commchannels (tensors and plain values only)") from None
    if not isinstance(state, dict):
        raise CorruptCheckpointError(f"checkpoint {str(path)!r} holds a {type(state).__name__}; expected a dict")
    return state


def _finite(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def read_metrics(path: str | os.PathLike, up_to_step: int | None = None) -> list[dict[str, Any]]:
    """The rows of a ``metrics.jsonl``; a partial last line (a run killed while writing it) is
    dropped, as are rows after ``up_to_step`` (logged after the checkpoint a run resumes)."""
    rows = []
    lines = Path(path).read_text().split("\n") if Path(path).exists() else []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):  # the last line, cut by a kill: nothing after it was written
                break
            raise ValueError(f"{str(path)!r} line {number} is not JSON: {line[:80]!r}") from None
        if up_to_step is None or row.get("step", 0) <= up_to_step:
            rows.append(row)
    return rows


class RunLogger:
    """Writes the metrics of a run folder. Use as a context manager; ``close`` writes the CSV.

    Args:
        run_dir: an existing folder (see :class:`commchannels.run_folder.RunFolder`).
            ``None`` logs nothing to disk.
        tensorboard: also write TensorBoard event files under ``run_dir/tb``.
        resume_step: continue a run from its checkpoint at this step: the metrics already
            logged up to it are kept, later ones dropped. ``None`` starts empty.
    """

    def __init__(
        self,
        run_dir: str | os.PathLike | None,
        tensorboard: bool = True,
        resume_step: int | None = None,
    ) -> None:
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.rows: list[dict[str, Any]] = []
        self._writer = None
        if self.run_dir is None:
            return
        jsonl = self.run_dir / "metrics.jsonl"
        if resume_step is not None:
            self.rows = read_metrics(jsonl, resume_step)
        atomic_write_text(jsonl, "".join(json.dumps(row) + "\n" for row in self.rows))
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step drops events a resumed run logged after its checkpoint
            self._writer = SummaryWriter(str(self.run_dir / "tb"),
                                         purge_step=None if resume_step is None else resume_step + 1)

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
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=keys)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, text.getvalue())


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
    return save_figure(fig, path)


def save_figure(fig: Any, path: str | Path, dpi: float | None = None) -> Path:
    """Lay out, save (creating the folder; ``dpi`` None: matplotlib's default) and close a
    matplotlib figure; returns the path."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def text_table(header: Sequence[str], body: Sequence[Sequence[str]], right: bool = False) -> str:
    """Rows of strings as an aligned text table under ``header`` and a rule (``right``: cells
    right-aligned, as numbers read best)."""
    widths = [max(len(str(c)) for c in column) for column in zip(header, *body)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(str(c).rjust(w) if right else str(c).ljust(w) for c, w in zip(row, widths)) for row in body]
    return "\n".join(line.rstrip() for line in lines)


def progress(iterable: Any = None, total: int | None = None, desc: str = "", enabled: bool = True):
    """A tqdm progress bar (silent when not a terminal or ``enabled`` is False)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, disable=None if enabled else True, dynamic_ncols=True)
