"""Output exchange on the shared run protocol: options, run folders, checkpoints, signals, kills."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from exchange_tiny import TIMES, tiny  # the shared tiny setting

from commchannels.cli import main
from commchannels.run_folder import acquire_lock, release_lock, replace_run
from commchannels.runs import load_checkpoint, save_checkpoint
from commchannels.training.exchange import Config, compare, train
from commchannels.training.exchange.methods import Worker
from commchannels.training.protocol import Interrupted

REPO = Path(__file__).resolve().parents[2]


def without_time(rows):
    if isinstance(rows, dict):
        return {k: v for k, v in rows.items() if k not in TIMES}
    return [without_time(r) for r in rows]


def exit_code(args: list[str]) -> int:
    """``commchannels ARGS``'s exit code (argparse errors exit, the others are returned)."""
    try:
        return main(args)
    except SystemExit as exit_info:
        return exit_info.code


def run_id(path: Path) -> str:
    return json.loads((path / "run.json").read_text())["run_id"]


# ---------------------------------------------------------------------- options
@pytest.mark.parametrize("kw, name", [
    (dict(alpha=float("nan")), "alpha"), (dict(lr=float("inf")), "lr"), (dict(temperature=float("nan")), "temperature"),
    (dict(timeout=float("nan")), "timeout"), (dict(seed=99999999999999999999), "seed"), (dict(seed=-1), "seed"),
    (dict(threads=100000), "threads"), (dict(workers=2.0), "workers"), (dict(steps=True), "steps"),
    (dict(hidden=(8, 0)), "hidden"), (dict(lr=0.0), "lr"),
])
def test_bad_values_name_the_option(kw, name):
    with pytest.raises(ValueError, match=name):
        tiny(**kw)


@pytest.mark.parametrize("kw", [dict(public_batch=10**8), dict(hidden=(10**6, 10**6)),
                                dict(workers=4096, hidden=(4096, 4096)), dict(batch_size=10**9)])
def test_sizes_that_cannot_fit_fail_at_once_with_the_estimate(kw):
    start = time.monotonic()
    with pytest.raises(ValueError, match=r"needs about [\d.]+ GiB of memory"):
        tiny(**kw)
    assert time.monotonic() - start < 1


def test_topk_beyond_the_classes_fails_at_once():
    with pytest.raises(ValueError, match="topk=11"):
        train(tiny(topk=11))


@pytest.mark.parametrize("flag, value", [("--seed", "99999999999999999999"), ("--threads", "100000"),
                                         ("--alpha", "nan"), ("--lr", "inf"), ("--temperature", "nan")])
def test_cli_rejects_bad_values_naming_them(flag, value, capsys):
    assert exit_code(["train", "exchange", flag, value]) == 2
    assert f"{flag[2:]}={value}" in capsys.readouterr().err


# ---------------------------------------------------------------------- run folders
def test_run_folder_records_the_run(tmp_path):
    result = train(tiny(run_dir=str(tmp_path), checkpoint_every=6))
    assert result.extras["run_id"] == run_id(tmp_path)
    assert json.loads((tmp_path / "final.json").read_text()) == result.final
    assert (tmp_path / "accuracy_vs_steps.png").is_file() and (tmp_path / "model_worker_2.pt").is_file()
    latest = load_checkpoint(tmp_path / "checkpoints" / "latest.pt")
    assert latest["step"] == 12 and latest["run_id"] == run_id(tmp_path)  # the final checkpoint
    part = load_checkpoint(tmp_path / "checkpoints" / "step_00000012" / "worker_1.pt")
    assert part["run_id"] == run_id(tmp_path) and part["step"] == 12
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["latest.pt", "step_00000012"]
    if os.umask(0o022) == 0o022:
        for path in (tmp_path / "final.json", tmp_path / "checkpoints" / "latest.pt",
                     tmp_path / "checkpoints" / "step_00000012" / "worker_1.pt", tmp_path / "run.json"):
            assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


def test_folder_of_another_run_is_refused_unless_resume_or_overwrite(tmp_path):
    train(tiny(method="codistill", run_dir=str(tmp_path), checkpoint_every=6))
    first = run_id(tmp_path)
    # the case: an independent run into a codistill folder used to keep its checkpoints
    with pytest.raises(ValueError, match="already holds a run"):
        train(tiny(method="independent", run_dir=str(tmp_path)))
    assert run_id(tmp_path) == first
    result = train(tiny(method="independent", run_dir=str(tmp_path), overwrite=True))
    assert run_id(tmp_path) != first and result.final["bytes_sent"] == 0
    with pytest.raises(ValueError, match="differ from the saved run: \\['method'\\]"):
        train(tiny(method="codistill", run_dir=str(tmp_path), resume=True))


def test_second_run_into_a_locked_folder_fails_at_once(tmp_path):
    train(tiny(run_dir=str(tmp_path)))
    lock = acquire_lock(tmp_path)  # as a running exchange run holds it
    try:
        for mode in ("simulated", "processes"):
            start = time.monotonic()
            with pytest.raises(ValueError, match="in use by a running run"):
                train(tiny(run_dir=str(tmp_path), resume=True, mode=mode))
            assert time.monotonic() - start < 5  # refused before any process is started
    finally:
        release_lock(lock)


def test_resume_refuses_checkpoints_of_another_run(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for folder in (a, b):
        with pytest.raises(RuntimeError, match="injected fault"):
            train(tiny(run_dir=str(folder), checkpoint_every=6, inject_fault="0:8:raise"))
    # b's pointer, a's worker file: the part belongs to another run
    shutil.copy(a / "checkpoints" / "step_00000006" / "worker_1.pt", b / "checkpoints" / "step_00000006")
    with pytest.raises(ValueError, match=f"belongs to run '{run_id(a)}'"):
        train(tiny(run_dir=str(b), resume=True))
    # a's whole checkpoints folder in b
    shutil.rmtree(b / "checkpoints")
    shutil.copytree(a / "checkpoints", b / "checkpoints")
    with pytest.raises(ValueError, match=f"belongs to run '{run_id(a)}'"):
        train(tiny(run_dir=str(b), resume=True))
    # a part of this run but of another step
    part = a / "checkpoints" / "step_00000006" / "worker_2.pt"
    save_checkpoint(part, {**load_checkpoint(part), "step": 5})
    with pytest.raises(ValueError, match="at step 5"):
        train(tiny(run_dir=str(a), resume=True))


def test_resume_with_fewer_steps_than_the_checkpoint_fails(tmp_path):
    with pytest.raises(RuntimeError, match="injected fault"):
        train(tiny(run_dir=str(tmp_path), steps=30, checkpoint_every=12, inject_fault="0:26:raise"))
    with pytest.raises(ValueError, match="checkpoint is at step 24, past the 12 steps asked for"):
        train(tiny(run_dir=str(tmp_path), steps=12, resume=True))


def test_finished_run_resumes_with_a_larger_budget(tmp_path):
    whole = train(tiny(steps=24))
    train(tiny(steps=12, run_dir=str(tmp_path)))
    again = train(tiny(steps=12, run_dir=str(tmp_path), resume=True))  # nothing left to do
    assert again.final == json.loads((tmp_path / "final.json").read_text())
    longer = train(tiny(steps=24, run_dir=str(tmp_path), resume=True))
    assert without_time(longer.history) == without_time(whole.history)


def test_comparison_is_one_run_with_a_subfolder_per_method(tmp_path):
    methods = ("independent", "codistill")
    whole = compare(tiny(), methods)
    with pytest.raises(RuntimeError, match="injected fault"):  # the second method fails
        compare(tiny(run_dir=str(tmp_path), checkpoint_every=6, inject_fault="0:9:raise"), methods)
    assert load_checkpoint(tmp_path / "checkpoints" / "latest.pt")["methods"] == []
    with pytest.raises(ValueError, match="already holds a run"):
        compare(tiny(run_dir=str(tmp_path)), methods)
    out = compare(tiny(run_dir=str(tmp_path), resume=True), methods)
    assert without_time(out["rows"]) == without_time(whole["rows"])
    assert load_checkpoint(tmp_path / "checkpoints" / "latest.pt")["methods"] == list(methods)
    assert json.loads((tmp_path / "final.json").read_text()) == out["final"]
    assert run_id(tmp_path / "codistill") != run_id(tmp_path)
    compare(tiny(run_dir=str(tmp_path), overwrite=True), methods)


def test_cli_run_folder_flags(tmp_path, capsys):
    args = ["train", "exchange", "--dataset", "digits", "--train-size", "600", "--hidden", "8", "--steps", "12",
            "--eval-every", "6", "--batch-size", "8", "--workers", "2", "--public-batch", "20",
            "--no-tensorboard", "--no-progress", "--run-dir", str(tmp_path)]
    assert main(args + ["--checkpoint-every", "6"]) == 0
    assert exit_code(args) == 2 and "--overwrite" in capsys.readouterr().err
    assert main(args + ["--resume", "--steps", "18"]) == 0
    assert load_checkpoint(tmp_path / "checkpoints" / "latest.pt")["step"] == 18
    assert main(args + ["--overwrite"]) == 0


# ---------------------------------------------------------------------- signals
@pytest.mark.parametrize("method", ["codistill", "async-sgd"])
def test_signal_checkpoints_the_step_and_resume_matches(tmp_path, monkeypatch, method):
    cfg = tiny(method=method, steps=20, eval_every=5, async_order="shuffle")
    whole = train(cfg)
    calls = {"n": 0}
    next_batch = Worker.next_batch

    def signalled(self, size):
        calls["n"] += 1
        if calls["n"] == 3 * 8 + 1:  # during step index 8 (3 workers): stop after step 9
            signal.raise_signal(signal.SIGTERM)
        return next_batch(self, size)

    monkeypatch.setattr(Worker, "next_batch", signalled)
    with pytest.raises(Interrupted, match="SIGTERM after step 9") as info:
        train(replace_run(cfg, run_dir=str(tmp_path), checkpoint_every=6))
    assert info.value.step == 9 and load_checkpoint(info.value.checkpoint)["step"] == 9
    monkeypatch.setattr(Worker, "next_batch", next_batch)
    resumed = train(replace_run(cfg, run_dir=str(tmp_path), resume=True))
    assert without_time(resumed.history) == without_time(whole.history)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handlers are restored


def test_signal_without_run_folder_still_stops(monkeypatch):
    next_batch = Worker.next_batch

    def signalled(self, size):
        if self.index == 0:
            signal.raise_signal(signal.SIGINT)
        return next_batch(self, size)

    monkeypatch.setattr(Worker, "next_batch", signalled)
    with pytest.raises(Interrupted, match="SIGINT after step 1; no run_dir") as info:
        train(tiny())
    assert info.value.checkpoint is None


# ---------------------------------------------------------------------- a killed process
def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "commchannels.cli", "train", "exchange", *args]


@pytest.mark.slow
def test_killed_cli_run_resumes_to_the_uninterrupted_result(tmp_path):
    options = dict(dataset="digits", workers=3, hidden=(32,), steps=600, batch_size=16, eval_every=50,
                   exchange_every=10, burn_in=20, public_batch=50, seed=3)
    whole = train(Config(**options, run={"tensorboard": False, "progress": False}))
    args = [f"--{k.replace('_', '-')}" for k in options]
    flat = []
    for key, value in zip(args, options.values()):
        flat += [key, *(str(v) for v in value)] if isinstance(value, tuple) else [key, str(value)]
    flat += ["--run-dir", str(tmp_path), "--checkpoint-every", "50", "--no-tensorboard", "--no-progress"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(cli(*flat), cwd=tmp_path.parent, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    latest = tmp_path / "checkpoints" / "latest.pt"
    deadline = time.monotonic() + 120
    while not latest.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    killed_at = load_checkpoint(latest)["step"]
    assert 0 < killed_at < 600
    done = subprocess.run(cli(*flat, "--resume"), cwd=tmp_path.parent, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    final = json.loads((tmp_path / "final.json").read_text())
    assert without_time(final) == without_time(whole.final)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert without_time(rows) == without_time(whole.history)
