"""Output exchange, multi-process mode: 2 processes on 127.0.0.1 over gloo."""

from __future__ import annotations

import dataclasses
import time

import pytest
import torch

from commchannels.training.exchange import Config, train

TINY = dict(dataset="digits", train_size=400, hidden=(8,), steps=10, batch_size=8, eval_every=5,
            exchange_every=4, public_size=40, public_batch=20, burn_in=0, tensorboard=False, workers=2,
            timeout=20.0)


def tiny(**kw) -> Config:
    return Config(**{**TINY, **kw})


def same_history(a: list[dict], b: list[dict]) -> bool:
    strip = [[{k: v for k, v in row.items() if k != "wall_time"} for row in h] for h in (a, b)]
    return strip[0] == [pytest.approx(row) for row in strip[1]]


def test_sync_sgd_same_parameters_in_both_modes():
    sim = train(tiny(method="sync-sgd"))
    procs = train(tiny(method="sync-sgd", mode="processes"))
    assert procs.final["bytes_sent"] == sim.final["bytes_sent"] > 0
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
def test_resume_in_processes_matches_uninterrupted(tmp_path):
    cfg = tiny(method="sync-sgd", steps=12, eval_every=4)
    whole = train(cfg)
    crashed = dataclasses.replace(cfg, mode="processes", run_dir=str(tmp_path), checkpoint_every=6,
                                  inject_fault="1:8:raise")
    with pytest.raises(RuntimeError, match="process 1"):
        train(crashed)
    resumed = train(dataclasses.replace(crashed, inject_fault="", resume=True))
    assert same_history(resumed.history, whole.history)


@pytest.mark.slow
@pytest.mark.parametrize("kind, message", [("raise", "injected fault"), ("exit", "exited with code 3"),
                                           ("hang", "died or hung")])
def test_failing_worker_stops_everyone_with_clear_error(kind, message):
    start = time.monotonic()
    with pytest.raises(RuntimeError, match=message):
        train(tiny(method="sync-sgd", mode="processes", steps=1000, timeout=5.0,
                   inject_fault=f"1:3:{kind}"))
    assert time.monotonic() - start < 60
