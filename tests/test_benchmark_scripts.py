"""The benchmark scripts' own options, on smoke runs (their figures are not checked here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

EXCHANGE = Path(__file__).resolve().parents[1] / "benchmarks" / "exchange.py"
SMOKE = ["--regime", "converged", "--steps", "20", "--seeds", "0", "--lrs", "1e-2", "--alphas", "5", "--smoke",
         "--plots", ""]


def exchange(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(EXCHANGE), *SMOKE, *args], capture_output=True, text=True, timeout=600)


def variants(path: Path, workers: int = 4) -> dict[str, dict]:
    return {r["variant"]: r for r in json.loads(path.read_text())["per_workers"][str(workers)]["rows"]}


def test_extend_adds_variants_and_tuned_from_reuses_the_choices(tmp_path):
    first, extended, sweep = tmp_path / "first.json", tmp_path / "extended.json", tmp_path / "sweep.json"
    assert exchange("--variants", "sync-ddp", "independent", "--out", str(first)).returncode == 0
    done = exchange("--variants", "codistill-top1", "--extend", str(first), "--out", str(extended))
    assert done.returncode == 0, done.stderr
    rows = variants(extended)
    assert list(rows) == ["sync-ddp", "independent", "codistill-top1"]
    assert rows["sync-ddp"] == variants(first)["sync-ddp"]  # kept, not rerun
    # one byte per example: 500 examples to each of 3 peers at steps 2, 12 (burn-in 2, every 10)
    assert rows["codistill-top1"]["bytes_sent"] == 4 * 3 * 2 * 500
    refused = exchange("--variants", "codistill", "--lrs", "2e-2", "--extend", str(first), "--out", str(extended))
    assert refused.returncode != 0 and "its lrs [0.01] differs from this run's [0.02]" in refused.stderr
    # reports of variants run in parallel merge into one, without training
    other, merged = tmp_path / "other.json", tmp_path / "merged.json"
    assert exchange("--variants", "diloco", "--out", str(other)).returncode == 0
    done = exchange("--variants", "--extend", str(first), str(other), "--out", str(merged))
    assert done.returncode == 0, done.stderr
    runs = {name: json.loads(path.read_text())["per_workers"]["4"]["runs"] for name, path in (
        ("first", first), ("other", other), ("merged", merged))}
    assert runs["merged"] == {**runs["first"], **runs["other"]}
    assert variants(merged)["diloco"]["target"] == variants(first)["sync-ddp"]["target"]  # sync DDP's, merged
    twice = exchange("--variants", "--extend", str(first), str(extended), "--out", str(merged))
    assert twice.returncode != 0 and "variant 'sync-ddp' at 4 workers is in both" in twice.stderr
    alone = exchange("--variants", "--out", str(merged))
    assert alone.returncode != 0 and "expected --extend FILE" in alone.stderr
    # re-priced as on hardware 4x faster, without training: a quarter of the compute, the same link time
    priced = tmp_path / "priced.json"
    done = exchange("--variants", "--extend", str(merged), "--compute-speedup", "4", "--out", str(priced))
    assert done.returncode == 0, done.stderr
    assert json.loads(priced.read_text())["per_workers"]["4"]["runs"] == runs["merged"]
    slow, fast = variants(merged)["sync-ddp"], variants(priced)["sync-ddp"]
    reached = next(r for r in runs["merged"]["sync-ddp"]["histories"][0] if r["test_acc"] >= slow["target"])
    assert fast["sim_time_to_target_100Mbit_per_seed"][0] == pytest.approx(
        slow["sim_time_to_target_100Mbit_per_seed"][0] - 0.75 * reached["compute_time"])
    free = exchange("--variants", "--extend", str(merged), "--compute-speedup", "0", "--out", str(priced))
    assert free.returncode != 0 and "--compute-speedup 0: expected a positive factor" in free.stderr

    done = exchange("--workers", "2", "--variants", "sync-ddp", "codistill-top1", "--lrs", "3e-3", "1e-2",
                    "--tuned-from", str(extended), "--out", str(sweep))
    assert done.returncode == 0, done.stderr
    report = json.loads(sweep.read_text())
    assert report["tuned_from"] == {"file": "extended.json", "workers": 4}
    assert {k: v["val_acc_per_lr"] for k, v in report["per_workers"]["2"]["runs"].items()} == {
        "sync-ddp": {"lr=0.01 alpha=5": pytest.approx(variants(sweep, 2)["sync-ddp"]["val_acc"])},
        "codistill-top1": {"lr=0.01 alpha=5": pytest.approx(variants(sweep, 2)["codistill-top1"]["val_acc"])}}
    missing = exchange("--variants", "diloco", "--tuned-from", str(first), "--out", str(sweep))
    assert missing.returncode != 0 and "no tuned settings for variants ['diloco']" in missing.stderr


COMPOSITIONALITY = EXCHANGE.parent / "compositionality.py"


def compositionality(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(COMPOSITIONALITY), "--steps", "3", "--seeds", "0", *args],
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow  # about 35 s: each run's final evaluation plays 100k objects per split
def test_compositionality_extend_keeps_runs_and_jobs_run_in_parallel(tmp_path):
    first, extended = tmp_path / "first.json", tmp_path / "extended.json"
    assert compositionality("--options", "plain", "--out", str(first)).returncode == 0
    done = compositionality("--options", "attention+additive", "memoryless", "--jobs", "2", "--extend", str(first),
                            "--out", str(extended))
    assert done.returncode == 0, done.stderr
    report = json.loads(extended.read_text())
    assert [r["option"] for r in report["rows"]] == ["plain", "memoryless", "attention+additive"]  # OPTIONS order
    assert report["runs"][0] == json.loads(first.read_text())["runs"][0]  # kept, not rerun
    assert report["options"]["attention+additive"]["sender_attention"] is True
    refused = compositionality("--options", "memoryless", "--seeds", "1", "--extend", str(first), "--out",
                               str(extended))
    assert refused.returncode != 0 and "it ran 3 updates on seeds [0]" in refused.stderr
