"""Output exchange, simulated mode: exact byte counts, staleness, determinism, resume, options."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch
from exchange_tiny import N_PARAMS, TIMES, TINY, tiny  # the shared tiny setting

from commchannels.cli import main
from commchannels.run_folder import replace_run
from commchannels.runs import load_checkpoint
from commchannels.training.exchange import METHODS, compare, train
from commchannels.training.exchange.codec import decode, encode, message_specs
from commchannels.training.exchange.loop import load_data, split_data


def sent(result) -> int:
    return result.final["bytes_sent"]


def without_time(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in TIMES} for row in history]


def test_bytes_gradient_and_parameter_methods():
    n, steps = 3, 12
    assert sent(train(tiny(method="independent"))) == 0
    sync = train(tiny(method="sync-sgd"))
    assert sync.final["bytes_sent"] == sync.final["bytes_received"] == n * steps * N_PARAMS * 4
    local = train(tiny(method="local-sgd"))  # averages after steps 5 and 10
    assert sent(local) == n * 2 * N_PARAMS * 4
    asyn = train(tiny(method="async-sgd"))  # int64 version + gradient; (version, staleness) + params
    assert asyn.final["bytes_sent"] == n * steps * (8 + N_PARAMS * 4)
    assert asyn.final["bytes_received"] == n * steps * (16 + N_PARAMS * 4)


@pytest.mark.parametrize("bits, topk, per_row", [(32, 0, 40), (16, 0, 20), (8, 0, 10), (4, 0, 5),
                                                 (8, 3, 3 + 1.5), (4, 3, 1.5 + 1.5), (4, 1, 0.5 + 0.5)])
def test_bytes_codistill_public(bits, topk, per_row):
    # exchanges at steps 0, 5, 10; each worker sends one message of 20 rows to each of its peers
    result = train(tiny(method="codistill", bits=bits, topk=topk, peers=2))
    assert result.final["bytes_sent"] == result.final["bytes_received"] == 3 * 3 * 2 * 20 * per_row


def test_bytes_codistill_own_batch_and_burn_in():
    # burn-in 3: exchanges at steps 3 and 8; one peer; inputs 8 x 64 float32 out, 8 x 10 uint8 back
    result = train(tiny(method="codistill", distill_on="own", peers=1, burn_in=3))
    assert sent(result) == 3 * 2 * (8 * 64 * 4 + 8 * 10)


def test_split_data_shards_and_public_pool():
    data = load_data(tiny())
    public, shards, _ = split_data(tiny(public_pool="heldout"), data)
    assert len(public) == 40 and [len(y) for _, y in shards] == [186] * 3
    public_all, shards_all, _ = split_data(tiny(), data)  # held-out inputs plus every shard's inputs
    assert len(public_all) == 40 + 3 * 186
    assert all(torch.equal(a[1], b[1]) for a, b in zip(shards, shards_all))


@pytest.mark.parametrize("rows", [5, 6])  # an odd count of 4-bit fields pads the last byte
def test_codec_round_trip(rows):
    probs = torch.softmax(torch.randn(rows, 10, generator=torch.Generator().manual_seed(0)), 1)
    assert torch.allclose(decode(encode(probs, 0, 32), rows, 10, 0, 32), probs, atol=1e-6)
    for topk in (0, 1, 3):
        for bits, tol in ((16, 1e-3), (8, 1 / 255 + 1e-3), (4, 1 / 15 + 1e-2)):
            msg = encode(probs, topk, bits)
            assert [tuple(t.shape) for t in msg] == [s.shape for s in message_specs(rows, 10, topk, bits)]
            assert [t.dtype for t in msg] == [s.dtype for s in message_specs(rows, 10, topk, bits)]
            got = decode(msg, rows, 10, topk, bits)
            assert torch.allclose(got.sum(1), torch.ones(rows))
            if topk == 0:
                assert (got - probs).abs().max() < tol
            else:  # the k largest come back where they were, the rest is spread evenly
                top = probs.topk(topk)
                assert (got.gather(1, top.indices) - top.values).abs().max() < tol + 0.05
                assert torch.equal(got.topk(topk).indices.sort().values, top.indices.sort().values)
    # one byte per example (each field's last byte padded): a top-1 class and its probability, 4 bits each
    assert sum(s.nbytes for s in message_specs(rows, 10, 1, 4)) == 2 * ((rows + 1) // 2)
    wide = torch.softmax(torch.randn(rows, 300, generator=torch.Generator().manual_seed(1)), 1)
    msg = encode(wide, 2, 8)
    assert msg[1].dtype == torch.int16 and decode(msg, rows, 300, 2, 8).topk(1).indices.equal(wide.topk(1).indices)


def test_async_staleness_schedule():
    rr = train(tiny(method="async-sgd", workers=4)).extras["staleness"]
    assert [s[0] for s in rr] == [0, 1, 2, 3]  # first round: each waits for those before it
    assert all(v == 3 for s in rr for v in s[1:])  # then N - 1 updates between pull and push
    shuffled = [train(tiny(method="async-sgd", workers=4, async_order="shuffle")).extras["staleness"]
                for _ in range(2)]
    assert shuffled[0] == shuffled[1]
    assert len({v for s in shuffled[0] for v in s}) > 2  # the shuffle really varies staleness
    other = train(tiny(method="async-sgd", workers=4, async_order="shuffle", seed=1)).extras["staleness"]
    assert other != shuffled[0]


def test_determinism_ignores_global_rng():
    runs = []
    for scramble in (1, 2):
        torch.manual_seed(scramble)
        runs.append(train(tiny(method="codistill", topk=3)))
    assert without_time(runs[0].history) == without_time(runs[1].history)
    for a, b in zip(runs[0].extras["models"], runs[1].extras["models"]):
        for pa, pb in zip(a.parameters(), b.parameters()):
            assert torch.equal(pa, pb)


@pytest.mark.parametrize("method", ["codistill", "async-sgd"])
def test_resume_after_crash_gives_same_result(tmp_path, method):
    # checkpoints at 6 and 12 fall between evaluations (5, 10, ...): partial loss sums are restored
    cfg = tiny(method=method, steps=20, eval_every=5, async_order="shuffle")
    whole = train(cfg)
    crashed = dataclasses.replace(cfg, inject_fault="1:13:raise",
                                  run=dict(run_dir=str(tmp_path), checkpoint_every=6, tensorboard=False))
    with pytest.raises(RuntimeError, match="injected fault"):
        train(crashed)
    assert load_checkpoint(tmp_path / "checkpoints" / "latest.pt")["step"] == 12
    resumed = train(replace_run(dataclasses.replace(crashed, inject_fault=""), resume=True))
    assert without_time(resumed.history) == without_time(whole.history)
    for a, b in zip(whole.extras["models"], resumed.extras["models"]):
        assert all(torch.equal(pa, pb) for pa, pb in zip(a.parameters(), b.parameters()))


def test_every_method_learns_above_chance():
    out = compare(tiny(workers=2, steps=60, eval_every=30, hidden=(32,), lr=3e-3, exchange_every=10))
    for row in out["rows"]:
        assert row["test_acc"] > 0.4, row  # chance is 0.1 (diloco: 6 outer steps, about 0.49)
    by = {r["method"]: r for r in out["rows"]}
    assert by["codistill"]["bytes_sent"] * 100 < by["sync-sgd"]["bytes_sent"]


@pytest.mark.parametrize("kw, name", [
    (dict(method="gossip"), "method"), (dict(alpha=-0.1), "alpha"), (dict(workers=0), "workers"),
    (dict(peers=3), "peers"), (dict(bits=3), "bits"), (dict(temperature=0.0), "temperature"),
    (dict(inject_fault="x"), "inject_fault"), (dict(resume=True), "resume"),
    (dict(public_pool="heldout", public_size=0), "public_size"),
])
def test_bad_options_name_the_option(kw, name):
    with pytest.raises(ValueError, match=name):
        tiny(**kw)


@pytest.mark.parametrize("kw, name", [
    (dict(workers=700), "workers"), (dict(batch_size=500), "batch_size"),
    (dict(public_size=600), "public_size"),
])
def test_options_checked_against_data_fail_at_once(kw, name):
    with pytest.raises(ValueError, match=name):
        train(tiny(**kw))


def test_torchrun_world_size_must_match_workers(monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(ValueError, match="workers=3 needs 4 processes"):  # + 1 parameter server
        train(tiny(method="async-sgd"))


def test_resume_without_checkpoint_fails(tmp_path):
    with pytest.raises(ValueError, match="resume"):
        train(tiny(run_dir=str(tmp_path), resume=True))


def test_cli_all_methods_writes_summary_and_plots(tmp_path, capsys):
    args = ["train", "exchange", "--method", "all", "--run-dir", str(tmp_path), "--no-tensorboard", "--no-progress"]
    for key in ("dataset", "train_size", "steps", "batch_size", "eval_every", "public_size",
                "public_batch", "workers"):
        args += ["--" + key.replace("_", "-"), str(TINY[key])]
    assert main(args + ["--hidden", "8"]) == 0
    assert "codistill" in capsys.readouterr().out
    rows = json.loads((tmp_path / "summary.json").read_text())
    assert {r["method"] for r in rows} == set(METHODS)
    assert math.isclose(next(r for r in rows if r["method"] == "sync-sgd")["bytes_fraction_of_sync"], 1)
    for name in ("accuracy_vs_steps.png", "accuracy_vs_time.png", "accuracy_vs_bytes.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert (tmp_path / "codistill" / "metrics.csv").is_file()
    assert (tmp_path / "codistill" / "model_worker_2.pt").is_file()
    with pytest.raises(SystemExit):
        main(["train", "exchange", "--method", "gossip"])
