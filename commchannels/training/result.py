"""The record every training loop returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Result:
    """What ``train(cfg)`` returns.

    Attributes:
        final: final metrics (e.g. ``{"train_acc": 0.99, "test_acc": 0.97}``).
        history: every logged row (``{"step": ..., metric: value}``), as in ``metrics.jsonl``.
        run_dir: the run folder, or ``None`` when nothing was written.
        extras: loop-specific objects (trained modules, messages for analysis, ...).
    """

    final: dict[str, float]
    history: list[dict[str, Any]] = field(default_factory=list)
    run_dir: Path | None = None
    extras: dict[str, Any] = field(default_factory=dict, repr=False)
