"""Output exchange, multi-process mode: 2 processes on 127.0.0.1 over gloo."""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time

import pytest
import torch

from commchannels.run_folder import replace_run
from commchannels.training.exchange import Config, train
from commchannels.training.protocol import Interrupted

TINY = dict(dataset="digits", train_size=400, hidden=(8,), steps=10, batch_size=8, eval_every=5,
            exchange_every=4, public_size=40, public_batch=20, burn_in=0, workers=2, timeout=20.0)

TIMES = ("wall_time", "compute_time", "sim_time")  # measured, so they differ between runs


def tiny(**kw) -> Config:
    return Config(**{**TINY, **kw, "run": {"tensorboard": False, "progress": False, **kw.get("run", {})}})


def same_history(a: list[dict], b: list[dict]) -> bool:
    strip = [[{k: v for k, v in row.items() if k not in TIMES} for row in h] for h in (a, b)]
    return strip[0] == [pytest.approx(row) for row in strip[1]]


def test_sync_sgd_same_parameters_in_both_modes():
    sim = train(tiny(method="sync-sgd"))
    procs = train(tiny(method="sync-sgd", mode="processes"))
    assert procs.final["bytes_sent"] == sim.final["bytes_sent"] > 0
    for model, state in zip(sim.extras["models"], procs.extras["state_dicts"]):
        for key, value in model.state_dict().items():
            torch.testing.assert_close(state[key], value, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("method, kw", [("fp16-compress", {}), ("powersgd", dict(powersgd_start=3, powersgd_rank=2)),
                                        ("powersgd", dict(model="cnn", channels=8, powersgd_start=2))])
def test_ddp_hooks_same_parameters_and_bytes_in_both_modes(method, kw):
    # DDP with torch's hook on 2 gloo processes against the simulated hook (bit-identical on 2 workers)
    sim = train(tiny(method=method, **kw))
    procs = train(tiny(method=method, mode="processes", **kw))
    assert procs.final["bytes_sent"] == sim.final["bytes_sent"] > 0
    assert procs.final["link_bytes"] == sim.final["link_bytes"]
    for model, state in zip(sim.extras["models"], procs.extras["state_dicts"]):
        for key, value in model.state_dict().items():
            torch.testing.assert_close(state[key], value, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_codistill_and_async_in_processes():
    for kw in (dict(topk=3, bits=4), dict(distill_on="own")):
        sim = train(tiny(method="codistill", **kw))
        procs = train(tiny(method="codistill", mode="processes", **kw))
        assert same_history(procs.history, sim.history)
    asyn = train(tiny(method="async-sgd", mode="processes"))  # 2 workers + 1 server process
    n_params = 64 * 8 + 8 + 8 * 10 + 10
    assert asyn.final["bytes_sent"] == 2 * 10 * (8 + 4 * n_params)
    assert 0 <= asyn.final["staleness"] <= 2 * 2


@pytest.mark.slow
@pytest.mark.parametrize("method", ["sync-sgd", "powersgd"])
def test_resume_in_processes_matches_uninterrupted(tmp_path, method):
    cfg = tiny(method=method, steps=12, eval_every=4, powersgd_start=3)
    whole = train(cfg)
    crashed = dataclasses.replace(cfg, mode="processes", inject_fault="1:8:raise",
                                  run=dict(run_dir=str(tmp_path), checkpoint_every=6, tensorboard=False))
    with pytest.raises(RuntimeError, match="process 1"):
        train(crashed)
    resumed = train(replace_run(dataclasses.replace(crashed, inject_fault=""), resume=True))
    assert same_history(resumed.history, whole.history)


@pytest.mark.slow
@pytest.mark.parametrize("kind, message", [("raise", "injected fault"), ("exit", r"process 1 \(worker 1\) of 2 exited "
                                           "with code 3"), ("hang", r"hung: process 1 \(worker 1\) in step 3")])
def test_failing_worker_stops_everyone_with_clear_error(kind, message):
    start = time.monotonic()
    with pytest.raises(RuntimeError, match=message):
        train(tiny(method="sync-sgd", mode="processes", steps=1000, timeout=5.0,
                   inject_fault=f"1:3:{kind}"))
    assert time.monotonic() - start < 120  # not 1000 steps or a 10**6 s sleep; spawning is slow on 2 loaded cores


@pytest.mark.slow
@pytest.mark.parametrize("method", ["sync-sgd", "async-sgd"])
def test_sigterm_stops_every_process_after_a_checkpoint(tmp_path, method):
    # checkpoints only at the end: the processes agree to stop at the next evaluation, and the
    # async-sgd workers tell their parameter server to stop mid-segment
    cfg = tiny(method=method, steps=3000, eval_every=10, run=dict(run_dir=str(tmp_path), checkpoint_every=1000))
    metrics = tmp_path / "metrics.jsonl"

    def signal_once_logging() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (metrics.exists() and metrics.read_text().strip()):
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=signal_once_logging, daemon=True)
    thread.start()
    with pytest.raises(Interrupted, match="SIGTERM") as info:
        train(dataclasses.replace(cfg, mode="processes"))
    thread.join()
    step = info.value.step
    assert 10 <= step < 1000 and step % 10 == 0
    checkpoint = tmp_path / "checkpoints" / f"step_{step:08d}"
    assert sorted(p.name for p in checkpoint.iterdir()) == (
        ["server.pt", "worker_0.pt", "worker_1.pt"] if method == "async-sgd" else ["worker_0.pt", "worker_1.pt"])
    resumed = train(replace_run(cfg, resume=True))  # simulated from here on: mode may change on resume
    assert resumed.history[-1]["step"] == 3000
    if method == "sync-sgd":
        assert same_history(resumed.history, train(dataclasses.replace(cfg, run=dict(tensorboard=False))).history)
