"""Draw the README's result figures from the benchmark JSON files (no training here).

    python benchmarks/plots.py      # writes docs/img/{referential,teaching_<preset>,exchange}.png
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parent
RESULTS, OUT = ROOT / "results", ROOT.parent / "docs" / "img"


def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def referential(data: dict) -> plt.Figure:
    """Seconds to 90 / 95 / 99 % train accuracy per method (missing bar: not reached)."""
    fig, ax = plt.subplots(figsize=(6.4, 3.2), dpi=100)
    rows = data["rows"]
    width = 0.27
    for k, target in enumerate(("90", "95", "99")):
        xs = [i + (k - 1) * width for i in range(len(rows))]
        ys = [row.get(f"s_to_{target}") or 0 for row in rows]
        ax.bar(xs, ys, width, label=f"{target}%")
    ax.set_xticks(range(len(rows)), [row["method"] for row in rows], rotation=20, ha="right", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("wall seconds (2 CPU cores)")
    ax.set_title("Referential game 4x8, 5 candidates: time to train accuracy", fontsize=9)
    ax.legend(fontsize=8)
    return fig


def exchange(data: dict) -> plt.Figure:
    """Final test accuracy against bytes sent per worker, per method."""
    fig, ax = plt.subplots(figsize=(6.4, 3.2), dpi=100)
    for row in data["rows"]:
        x = max(row["bytes_sent"], 1.0)
        ax.scatter(x, row["test_acc"], s=40)
        ax.annotate(row["method"], (x, row["test_acc"]), textcoords="offset points", xytext=(5, 3), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("bytes sent (all workers, log; 'independent' drawn at 1)")
    ax.set_ylabel("test accuracy")
    ax.set_title("Output exchange, 4 workers on MNIST-1D", fontsize=9)
    ax.grid(alpha=0.3)
    return fig


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    teaching_results = load("teaching")
    if teaching_results is not None:  # one figure per student preset, drawn as the benchmark does
        from teaching import plot_steps

        rows = teaching_results["steps_to_target"]
        for preset in sorted({row["preset"] for row in rows}):
            plot_steps(OUT / f"teaching_{preset}.png", [row for row in rows if row["preset"] == preset])
            print(f"wrote {OUT / f'teaching_{preset}.png'}")
    for name, draw, source in (("referential", referential, "train_referential"), ("exchange", exchange, "exchange")):
        data = load(source)
        if data is None:
            print(f"skip {name}: benchmarks/results/{source}.json not found")
            continue
        fig = draw(data)
        fig.tight_layout()
        fig.savefig(OUT / f"{name}.png")
        plt.close(fig)
        print(f"wrote {OUT / f'{name}.png'}")


if __name__ == "__main__":
    main()
