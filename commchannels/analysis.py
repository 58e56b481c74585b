"""``commchannels analyse RUN_DIR``: the language report of a saved referential run.

The referential trainer saves its final evaluation as ``RUN_DIR/interaction.pt``, an
:class:`~commchannels.training.interaction.Interaction` in which every train and test object (a
seeded sample of ``final_objects`` per split in larger pools) is the target of one greedy game
(meanings, messages, the receiver's answers, ``aux["split"]``).
:func:`analyse_run` reads it (``weights_only=True``), or, for runs saved before it existed,
``RUN_DIR/language.pt``::

    torch.save({"meanings": LongTensor (N, n_attributes), "messages": LongTensor (N, max_len),
                "attribute_sizes": list[int], "vocab_size": int,
                "split": list[str] of length N ("train" / "test"), optional}, path)

It computes :func:`commchannels.metrics.language_report` on all objects and on each split (plus
the receiver's accuracy when the record has it), writes ``RUN_DIR/analysis.json`` and the
heatmap ``RUN_DIR/symbol_usage.png``, and returns the table.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from commchannels.metrics import REPORT_KEYS, language_report, mask_padding
from commchannels.metrics.messages import check_language
from commchannels.runs import atomic_write_text
from commchannels.training.interaction import INTERACTION_FILE, LANGUAGE_FILE, Interaction

_EXPECTED = ("a dict saved with torch.save holding 'meanings' (LongTensor N x n_attributes), "
             "'messages' (LongTensor N x max_len), 'attribute_sizes' (list of int), "
             "'vocab_size' (int) and optionally 'split' (list of N str)")
_EXPECTED_INTERACTION = ("an Interaction saved by `commchannels train referential` (Interaction.save) with "
                         "meanings and info['vocab_size'] / info['attribute_sizes']")


_REQUIRED = ("meanings", "messages", "attribute_sizes", "vocab_size")
_SPLIT_ORDER = {"train": 0, "test": 1}
_COUNTS = {"n_objects", "n_messages", "length_min", "length_max", "symbols_used"}
# rows the report adds to the language metrics when the record has them
EXTRA_KEYS = {"receiver_acc": "receiver accuracy (greedy games, one per object)"}


class LanguageFileError(FileNotFoundError, ValueError):
    """Neither ``interaction.pt`` nor ``language.pt`` exists (a ``ValueError`` too, so the CLI
    reports it cleanly)."""


def load_language(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a ``language.pt`` file.

    Returns:
        ``{"meanings": int64 array, "messages": int64 array, "attribute_sizes": list[int],
        "vocab_size": int, "split": list[str] or None}``.

    Raises:
        LanguageFileError: if the file does not exist.
        ValueError: naming the file and what was expected, if it is unreadable or malformed.
    """
    path = Path(path)
    if not path.is_file():
        raise LanguageFileError(f"{path} does not exist; expected {_EXPECTED} "
                                f"(written by `commchannels train referential`)")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for corrupt / foreign files
        reason = (str(err).strip().splitlines() or [""])[0][:200]  # torch's are pages long
        raise ValueError(f"{path} could not be loaded ({type(err).__name__}: {reason}); "
                         f"expected {_EXPECTED}") from err
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds a {type(data).__name__}; expected {_EXPECTED}")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise ValueError(f"{path} lacks {missing} (it has {sorted(map(str, data))}); "
                         f"expected {_EXPECTED}")
    try:
        meanings, messages = check_language(data["meanings"], data["messages"])
        sizes = [int(s) for s in _as_list(data["attribute_sizes"])]
        vocab_size = int(data["vocab_size"])
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: {err}; expected {_EXPECTED}") from err
    split = data.get("split")
    if split is not None:
        split = _as_list(split)
        if len(split) != len(meanings) or not all(isinstance(s, str) for s in split):
            raise ValueError(f"{path}: 'split' must be a list of {len(meanings)} strings "
                             f"('train' / 'test'), one per meaning")
    return {"meanings": meanings, "messages": messages, "attribute_sizes": sizes,
            "vocab_size": vocab_size, "split": split, "correct": None}


def language_of(interaction: Interaction, where: str = "the interaction") -> dict[str, Any]:
    """The language of an :class:`Interaction`, as :func:`load_language` returns it, plus
    ``correct`` (the receiver's per-game score, or ``None``).

    Raises:
        ValueError: naming ``where`` if the record lacks meanings or the game's sizes.
    """
    info = interaction.info
    if interaction.meanings is None or "vocab_size" not in info or "attribute_sizes" not in info:
        raise ValueError(f"{where} lacks meanings or info['vocab_size'] / info['attribute_sizes']; "
                         f"expected {_EXPECTED_INTERACTION}")
    try:
        meanings, messages = check_language(interaction.meanings, interaction.message)
        sizes = [int(s) for s in _as_list(info["attribute_sizes"])]
        vocab_size = int(info["vocab_size"])
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: {err}; expected {_EXPECTED_INTERACTION}") from err
    masks = interaction.split_masks()
    split = None
    if masks:
        labels = np.full(len(meanings), "", dtype=object)
        for name, mask in masks.items():
            labels[mask.cpu().numpy()] = name
        split = labels.tolist()
    correct = interaction.aux.get("correct")
    return {"meanings": meanings, "messages": messages, "attribute_sizes": sizes, "vocab_size": vocab_size,
            "split": split, "correct": None if correct is None else correct.detach().cpu().float().numpy()}


def load_run_language(run_dir: str | os.PathLike) -> tuple[Path, dict[str, Any]]:
    """``(file read, language)`` of a run folder: ``interaction.pt``, else ``language.pt``.

    Raises:
        LanguageFileError: if the folder has neither file.
        ValueError: naming the file, if it is unreadable or malformed.
    """
    run_dir = Path(run_dir)
    path = run_dir / INTERACTION_FILE
    if path.is_file():
        return path, language_of(Interaction.load(path), str(path))
    path = run_dir / LANGUAGE_FILE
    if not path.is_file():
        raise LanguageFileError(f"{path} does not exist, nor {run_dir / INTERACTION_FILE}; expected "
                                f"{_EXPECTED_INTERACTION}, or {_EXPECTED} (written by `commchannels train "
                                "referential`)")
    return path, load_language(path)


def _as_list(x: Any) -> list:
    if isinstance(x, torch.Tensor):
        return x.tolist()
    if isinstance(x, (list, tuple)):
        return list(x)
    raise TypeError(f"expected a list, got {type(x).__name__}")


def analyse_run(run_dir: str | os.PathLike) -> str:
    """Compute the language report of ``run_dir`` (:func:`load_run_language`); write JSON and PNG;
    return the table.

    Writes ``run_dir/analysis.json`` (``{"metrics": {split: {name: value}}, ...}`` with split
    ``"all"`` plus each split of the file) and ``run_dir/symbol_usage.png``.
    """
    run_dir = Path(run_dir)
    path, lang = load_run_language(run_dir)
    reports = language_reports(lang, str(path))
    summary = {
        "file": str(path),
        "vocab_size": lang["vocab_size"],
        "attribute_sizes": lang["attribute_sizes"],
        "max_len": int(lang["messages"].shape[1]),
        "metrics": reports,
    }
    atomic_write_text(run_dir / "analysis.json", json.dumps(summary, indent=2))
    plot_symbol_usage(run_dir / "symbol_usage.png", lang["meanings"], lang["messages"], lang["attribute_sizes"],
                      lang["vocab_size"])
    return format_report(reports, title=f"language of {run_dir}")


def language_reports(lang: dict[str, Any], where: str = "the language") -> dict[str, dict[str, float]]:
    """``{"all": report, split: report, ...}``: :func:`~commchannels.metrics.language_report` of
    every object and of each split of ``lang`` (as :func:`language_of` returns it), with
    ``receiver_acc`` when ``lang["correct"]`` is known."""
    meanings, messages = lang["meanings"], lang["messages"]
    groups = {"all": np.ones(len(meanings), dtype=bool)}
    if lang["split"] is not None:
        labels = np.asarray(lang["split"])
        for name in sorted(set(lang["split"]), key=lambda s: (_SPLIT_ORDER.get(s, 2), s)):
            groups[name] = labels == name
    try:
        reports = {
            name: language_report(meanings[rows], messages[rows], lang["vocab_size"],
                                  lang["attribute_sizes"])
            for name, rows in groups.items()
        }
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from err
    if lang.get("correct") is not None:
        for name, rows in groups.items():
            reports[name]["receiver_acc"] = float(lang["correct"][rows].mean())
    return reports


def format_report(reports: dict[str, dict[str, float]], title: str = "") -> str:
    """The reports as a text table: one row per metric, one column per split."""
    names = list(reports)
    width = max(len(k) for k in REPORT_KEYS)
    lines = [title] if title else []
    lines.append(f"{'metric':<{width}}  " + "  ".join(f"{n:>9}" for n in names) + "  meaning")
    keys = {**REPORT_KEYS, **{k: v for k, v in EXTRA_KEYS.items() if all(k in r for r in reports.values())}}
    for key, meaning in keys.items():
        cells = []
        for name in names:
            value = reports[name][key]
            is_count = key in _COUNTS and value == int(value)
            cells.append(f"{int(value):>9d}" if is_count else f"{value:>9.3f}")
        lines.append(f"{key:<{width}}  " + "  ".join(cells) + f"  {meaning}")
    return "\n".join(lines)


def symbol_presence(
    meanings: np.ndarray, messages: np.ndarray, attribute_sizes: list[int], vocab_size: int
) -> list[np.ndarray]:
    """Per attribute, ``(n_values, vocab_size - 1)``: P(symbol s in message | attribute = v).

    Symbols 1..vocab_size-1 (EOS left out); rows of values never seen are NaN.
    """
    masked = mask_padding(messages)
    present = np.zeros((len(masked), vocab_size), dtype=bool)
    present[np.arange(len(masked))[:, None], masked] = True
    tables = []
    for a, size in enumerate(attribute_sizes):
        table = np.full((size, vocab_size - 1), np.nan)
        for v in range(size):
            rows = meanings[:, a] == v
            if rows.any():
                table[v] = present[rows, 1:].mean(axis=0)
        tables.append(table)
    return tables


def plot_symbol_usage(
    path: str | os.PathLike,
    meanings: np.ndarray,
    messages: np.ndarray,
    attribute_sizes: list[int],
    vocab_size: int,
) -> Path:
    """Heatmap of :func:`symbol_presence`: one panel per attribute, values down, symbols across.

    A compositional language shows one bright cell per row, in columns disjoint between values
    (and between attributes if symbols are attribute-specific); a holistic one shows a haze.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tables = symbol_presence(meanings, messages, attribute_sizes, vocab_size)
    n_symbols = vocab_size - 1
    width = min(16.0, 3.0 + 0.25 * max(n_symbols, 1))
    height = min(20.0, 1.2 + 0.28 * sum(attribute_sizes) + 0.35 * len(tables))
    fig, axes = plt.subplots(len(tables), 1, figsize=(width, height), dpi=100, sharex=True,
                             squeeze=False, gridspec_kw={"height_ratios": attribute_sizes})
    image = None
    for a, (ax, table) in enumerate(zip(axes[:, 0], tables)):
        image = ax.imshow(table if n_symbols else np.zeros((len(table), 1)), aspect="auto",
                          cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest",
                          extent=(0.5, max(n_symbols, 1) + 0.5, len(table) - 0.5, -0.5))
        ax.set_ylabel(f"attr {a}", rotation=0, ha="right", va="center")
        step = max(1, len(table) // 8)
        ax.set_yticks(range(0, len(table), step))
    step = max(1, n_symbols // 20)
    axes[-1, 0].set_xticks(range(1, n_symbols + 1, step))
    axes[-1, 0].set_xlabel("symbol (EOS = 0 not shown)")
    axes[0, 0].set_title(f"P(symbol in message | attribute = value), {len(meanings)} objects")
    fig.colorbar(image, ax=axes[:, 0].tolist(), fraction=0.04, pad=0.02)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path
