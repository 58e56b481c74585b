"""Speed of the language metrics: topographic similarity at N = 1000 / 2000 objects (every
pair), with edit and Hamming message distances, and the full ``language_report``.

Two kinds of language: ``unique`` (every message differs: the worst case, every pair goes
through the vectorised Levenshtein programme) and ``repetitive`` (messages drawn from 200
distinct ones, as early in training: distances are computed once per distinct pair). A
pure-Python reference (EGG-style: a Levenshtein call per pair plus SciPy's ``spearmanr``) is
timed at a small N for comparison.

    python benchmarks/metrics.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, write_results  # noqa: E402

from commchannels.metrics import language_report, topographic_similarity  # noqa: E402
from commchannels.metrics.distances import edit_distance  # noqa: E402

N_ATTRIBUTES, N_VALUES, VOCAB = 4, 8, 16


def make_language(n: int, max_len: int, kind: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    meanings = rng.integers(0, N_VALUES, size=(n, N_ATTRIBUTES))
    pool = n if kind == "unique" else 200
    messages = rng.integers(1, VOCAB, size=(pool, max_len))
    messages[:, -1] = np.where(rng.random(pool) < 0.5, 0, messages[:, -1])  # some end early
    if kind != "unique":
        messages = messages[rng.integers(0, pool, size=n)]
    return meanings, messages


def timed(fn, repeats: int) -> tuple[float, float]:
    """Median seconds over ``repeats`` calls, and the last result."""
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def python_reference(meanings: np.ndarray, messages: np.ndarray) -> float:
    from scipy.stats import spearmanr

    texts = [m.tolist()[: (m.tolist() + [0]).index(0)] for m in messages]
    n = len(meanings)
    meaning_d = [float((meanings[i] != meanings[j]).mean()) for i in range(n) for j in range(i + 1, n)]
    message_d = [edit_distance(texts[i], texts[j]) for i in range(n) for j in range(i + 1, n)]
    return float(spearmanr(meaning_d, message_d).correlation)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repeat, N=1000 only")
    args = parser.parse_args()
    repeats = 1 if args.quick else 3
    sizes = (1000,) if args.quick else (1000, 2000)
    rows = []
    for n in sizes:
        for max_len in (4, 10):
            for kind in ("unique", "repetitive"):
                meanings, messages = make_language(n, max_len, kind)
                for distance in ("edit", "hamming"):
                    seconds, value = timed(partial(
                        topographic_similarity, meanings, messages, "hamming", distance,
                        max_pairs=None), repeats)
                    rows.append({"function": f"topsim/{distance}", "N": n, "max_len": max_len,
                                 "language": kind, "pairs": n * (n - 1) // 2,
                                 "seconds": seconds, "value": value})
        meanings, messages = make_language(n, 10, "unique")
        seconds, _ = timed(partial(
            language_report, meanings, messages, VOCAB, [N_VALUES] * N_ATTRIBUTES), repeats)
        rows.append({"function": "language_report", "N": n, "max_len": 10, "language": "unique",
                     "pairs": n * (n - 1) // 2, "seconds": seconds, "value": float("nan")})
    n_ref = 200 if args.quick else 500
    meanings, messages = make_language(n_ref, 10, "unique")
    seconds, value = timed(partial(python_reference, meanings, messages), 1)
    ours = topographic_similarity(meanings, messages, max_pairs=None)
    rows.append({"function": "python reference (edit)", "N": n_ref, "max_len": 10,
                 "language": "unique", "pairs": n_ref * (n_ref - 1) // 2, "seconds": seconds,
                 "value": value})
    if abs(value - ours) > 1e-9:
        raise SystemExit(f"topsim {ours} differs from the Python reference {value}")
    print_table(rows, ["function", "N", "max_len", "language", "pairs", "seconds", "value"])
    write_results("metrics", {"quick": args.quick, "repeats": repeats, "rows": rows})


if __name__ == "__main__":
    main()
