"""Output exchange, issue #11: CNNs, DDP hooks (fp16, PowerSGD) simulated, DiLoCo, codistillation
by checkpoints, public-batch augmentation, the validation split and the network model."""

from __future__ import annotations

import dataclasses
import doctest

import pytest
import torch
import torch.nn.functional as F
from exchange_tiny import N_PARAMS, TIMES, tiny  # the shared tiny setting

from commchannels.agents.convnets import CNN1DClassifier, CNN2DClassifier, build_classifier, count_parameters
from commchannels.run_folder import replace_run
from commchannels.runs import load_checkpoint
from commchannels.training.exchange import Config, comm, config, train
from commchannels.training.exchange.comm import LinkModel, SimCommunicator
from commchannels.training.exchange.config import parse_bandwidth
from commchannels.training.exchange.ddp import bucket_layout
from commchannels.training.exchange.loop import load_data, split_data
from commchannels.training.exchange.methods import Codistill, Worker
from commchannels.training.exchange.report import reach, time_at


def without_time(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in TIMES} for row in rows]


def params(result) -> list[torch.Tensor]:
    return [torch.nn.utils.parameters_to_vector(m.parameters()) for m in result.extras["models"]]


def test_doctests():
    for module in (comm, config):
        assert doctest.testmod(module).failed == 0


# ---------------------------------------------------------------------- models
@pytest.mark.parametrize("shape, cls", [((1, 40), CNN1DClassifier), ((1, 8, 8), CNN2DClassifier),
                                        ((1, 28, 28), CNN2DClassifier)])
def test_cnn_shapes_and_parameter_count(shape, cls):
    net = build_classifier("cnn", shape, 10, channels=4)
    assert isinstance(net, cls)
    x = torch.randn(5, int(torch.tensor(shape).prod()))
    assert net(x).shape == (5, 10)
    assert count_parameters("cnn", shape, 10, channels=4) == sum(p.numel() for p in net.parameters())
    # Greydanus's ConvBase on MNIST-1D: 25 channels, 5210 parameters
    assert count_parameters("cnn", (1, 40), 10) == 5210


def test_bad_model_options_name_them():
    with pytest.raises(ValueError, match="model"):
        tiny(model="resnet")
    with pytest.raises(ValueError, match="input_shape"):
        CNN1DClassifier((1, 2), 10)


# ---------------------------------------------------------------------- DDP hooks, simulated
def test_bucket_layout_is_one_bucket_for_small_models():
    net = build_classifier("cnn", (1, 40), 10)
    assert bucket_layout(list(net.parameters())) == [list(range(8))]


def test_bytes_of_the_ddp_hooks_by_hand():
    n, steps = 3, 12
    fp16 = train(tiny(method="fp16-compress"))
    assert fp16.final["bytes_sent"] == n * steps * N_PARAMS * 2
    # plain all-reduce for 3 steps, then per step: biases 8 + 10 uncompressed, P 8 + 10 and
    # Q 64 + 8 (rank 1: the 8x64 and 10x8 weight matrices both gain from compression)
    psgd = train(tiny(method="powersgd", powersgd_start=3))
    assert psgd.final["bytes_sent"] == n * (3 * N_PARAMS * 4 + 9 * (18 + 18 + 72) * 4)
    rank2 = train(tiny(method="powersgd", powersgd_start=3, powersgd_rank=2))  # P 36, Q 144
    assert rank2.final["bytes_sent"] == n * (3 * N_PARAMS * 4 + 9 * (18 + 36 + 144) * 4)


def test_powersgd_learns_and_its_error_feedback_is_checkpointed(tmp_path):
    cfg = tiny(method="powersgd", powersgd_start=2, steps=20, eval_every=5, model="cnn", channels=6)
    whole = train(cfg)
    crashed = replace_run(dataclasses.replace(cfg, inject_fault="1:13:raise"), run_dir=str(tmp_path),
                          checkpoint_every=6)
    with pytest.raises(RuntimeError, match="injected fault"):
        train(crashed)
    part = load_checkpoint(tmp_path / "checkpoints" / "step_00000012" / "worker_0.pt")
    assert part["method"]["sync"]["iter"] == 12 and 0 in part["method"]["sync"]["error"]
    resumed = train(replace_run(dataclasses.replace(crashed, inject_fault=""), resume=True))
    assert without_time(resumed.history) == without_time(whole.history)
    assert all(torch.equal(a, b) for a, b in zip(params(whole), params(resumed)))


# ---------------------------------------------------------------------- DiLoCo
def test_diloco_with_outer_lr_1_and_no_momentum_is_local_sgd():
    local = train(tiny(method="local-sgd", optimizer="adamw"))
    diloco = train(tiny(method="diloco", optimizer="adamw", outer_lr=1.0, outer_momentum=0.0))
    assert diloco.final["bytes_sent"] == local.final["bytes_sent"] == 3 * 2 * N_PARAMS * 4
    for a, b in zip(params(local), params(diloco)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    nesterov = train(tiny(method="diloco", optimizer="adamw", steps=10))  # ends on an outer step
    assert not torch.allclose(params(nesterov)[0], params(local)[0])
    assert all(torch.equal(params(nesterov)[0], p) for p in params(nesterov))


# ---------------------------------------------------------------------- codistillation
def test_codistill_checkpoints_form_sends_parameters():
    # exchanges at steps 0, 5, 10; each worker sends its 610 float32 parameters to each of 2 peers
    result = train(tiny(method="codistill", codistill_form="checkpoints", peers=2))
    assert result.final["bytes_sent"] == result.final["bytes_received"] == 3 * 3 * 2 * N_PARAMS * 4
    one_peer = train(tiny(method="codistill", codistill_form="checkpoints", peers=1, burn_in=3))
    assert one_peer.final["bytes_sent"] == 3 * 2 * N_PARAMS * 4  # steps 3 and 8


def test_codistill_loss_in_one_forward_pass_equals_the_two_terms_apart():
    cfg = tiny(method="codistill", distill_batch=0, alpha=2.0, temperature=2.0)
    gen = torch.Generator().manual_seed(0)
    x, y, public = torch.randn(8, 64, generator=gen), torch.randint(10, (8,), generator=gen), torch.randn(5, 64)
    worker = Worker(cfg, 0, (x, y), 10, (64,))
    method = Codistill(cfg, [worker], SimCommunicator(2), public, 10)
    target = torch.softmax(torch.randn(5, 10, generator=gen), dim=1)
    method.cache[0] = (public, target)
    apart = (F.cross_entropy(worker.model(x), y)
             + 2.0 * 4.0 * F.kl_div(F.log_softmax(worker.model(public) / 2.0, dim=1), target, reduction="batchmean"))
    assert method.loss(0, (x, y)).item() == pytest.approx(apart.item(), rel=1e-5)
    method.cache[0] = None  # before the first exchange: the labelled loss alone
    assert method.loss(0, (x, y)).item() == pytest.approx(F.cross_entropy(worker.model(x), y).item(), rel=1e-6)


def test_public_augmentation_is_the_same_for_every_worker_and_seeded():
    cfg = tiny(method="codistill", public_pool="heldout", public_shift=3, public_noise=0.1)
    data = load_data(cfg)
    public = split_data(cfg, data).public

    def batch() -> torch.Tensor:
        method = Codistill(cfg, [], SimCommunicator(3), public, 10)
        return method._public_batch()

    first = batch()
    assert torch.equal(first, batch()) and first.shape == (20, 64)
    plain = Codistill(tiny(method="codistill", public_pool="heldout"), [], SimCommunicator(3), public, 10)
    assert not torch.equal(first, plain._public_batch())
    assert train(cfg).final["bytes_sent"] == train(dataclasses.replace(cfg, public_shift=0)).final["bytes_sent"]


@pytest.mark.parametrize("method, kw", [("codistill", dict(codistill_form="checkpoints")),
                                        ("diloco", {}), ("fp16-compress", {})])
def test_resume_of_the_new_methods_gives_the_same_result(tmp_path, method, kw):
    cfg = tiny(method=method, steps=20, eval_every=5, **kw)
    whole = train(cfg)
    crashed = replace_run(dataclasses.replace(cfg, inject_fault="1:13:raise"), run_dir=str(tmp_path),
                          checkpoint_every=6)
    with pytest.raises(RuntimeError, match="injected fault"):
        train(crashed)
    resumed = train(replace_run(dataclasses.replace(crashed, inject_fault=""), resume=True))
    assert without_time(resumed.history) == without_time(whole.history)
    assert all(torch.equal(a, b) for a, b in zip(params(whole), params(resumed)))


# ---------------------------------------------------------------------- validation split
def test_validation_split_is_disjoint_and_logged():
    cfg = tiny(val_size=50)
    data = load_data(cfg)
    split = split_data(cfg, data)
    assert len(split.val[1]) == 50
    seen = {tuple(x.tolist()) for x in split.val[0]}
    assert not any(tuple(x.tolist()) in seen for shard in split.shards for x in shard[0])
    result = train(cfg)
    assert 0 <= result.final["val_acc"] <= 1
    with pytest.raises(ValueError, match="val_size"):
        train(tiny(val_size=560, public_size=40))


# ---------------------------------------------------------------------- the network model
@pytest.mark.parametrize("text", ["fast", "0Mbit", "-1Gbit", "1Xbit", "nan", "inf"])
def test_bad_bandwidth_names_the_option(text):
    with pytest.raises(ValueError, match="link_bandwidth"):
        parse_bandwidth(text)
    with pytest.raises(ValueError, match="link_bandwidth"):
        tiny(link_bandwidth=text)


def test_simulated_time_matches_a_hand_computation():
    assert parse_bandwidth("100Mbit") == 1e8 and parse_bandwidth("10Gbit/s") == 1e10
    assert parse_bandwidth("1.5 kbps") == 1500
    # sync-sgd, 3 workers, 12 steps: one ring all-reduce of 2440 bytes per step, 2 (N - 1) = 4
    # messages of 2440 / 3 bytes each
    result = train(tiny(method="sync-sgd", link_bandwidth="1Mbit", link_latency=0.001))
    f = result.final
    assert f["link_messages"] == 12 * 4
    assert f["link_bytes"] == pytest.approx(12 * 4 * 2440 / 3)
    by_hand = 12 * 4 * 0.001 + 12 * 4 * 2440 / 3 * 8 / 1e6  # 0.048 s + 0.312 s
    assert f["sim_time"] - f["compute_time"] == pytest.approx(by_hand)
    assert LinkModel(1e6, 0.001).seconds(48, 12 * 4 * 2440 / 3) == pytest.approx(by_hand)
    # codistill, 2 peers, exchanges at 0, 5, 10: 2 messages of 20 x 10 uint8 each per exchange
    co = train(tiny(method="codistill", peers=2, link_bandwidth="1Mbit", link_latency=0.001)).final
    assert co["link_messages"] == 3 * 2 and co["link_bytes"] == 3 * 2 * 200
    assert co["sim_time"] - co["compute_time"] == pytest.approx(3 * 2 * 0.001 + 3 * 2 * 200 * 8 / 1e6)


# ---------------------------------------------------------------------- many workers
def test_32_simulated_cnn_workers():
    result = train(Config(dataset="mnist1d", model="cnn", channels=8, workers=32, steps=4, eval_every=4,
                          batch_size=8, method="powersgd", powersgd_start=2,
                          run={"tensorboard": False, "progress": False}))
    assert len([k for k in result.final if k.startswith("test_acc_worker_")]) == 32
    assert result.final["link_messages"] == 2 * 62 + 2 * 3 * 62  # 2 plain steps, then 3 all-reduces a step


def test_rows_priced_on_another_link_and_time_to_target():
    history = [{"step": 10, "test_acc": 0.5, "bytes_sent": 100, "compute_time": 1.0, "link_messages": 4,
                "link_bytes": 1e6},
               {"step": 20, "test_acc": 0.8, "bytes_sent": 200, "compute_time": 2.0, "link_messages": 8,
                "link_bytes": 2e6}]
    assert time_at(history[0], 1e8, 1e-3) == pytest.approx(1.0 + 0.004 + 0.08)
    assert reach(history, 0.7, 1e9, 0.0) == {"step": 20, "bytes_sent": 200, "sim_time": pytest.approx(2.016)}
    assert reach(history, 0.9, 1e9, 0.0) is None
    # hardware 4x faster: a quarter of the compute, the same link time (0.5 + 0.016)
    assert reach(history, 0.7, 1e9, 0.0, compute_speedup=4.0)["sim_time"] == pytest.approx(0.516)
    with pytest.raises(ValueError, match="compute_speedup=0"):
        time_at(history[0], 1e8, 1e-3, compute_speedup=0)


def test_checkpoints_written_before_the_network_model_still_resume(tmp_path):
    cfg = tiny(method="sync-sgd", steps=12, run_dir=str(tmp_path), checkpoint_every=6)
    with pytest.raises(RuntimeError, match="injected fault"):
        train(dataclasses.replace(cfg, inject_fault="0:8:raise"))
    for part in (tmp_path / "checkpoints" / "step_00000006").glob("worker_*.pt"):
        state = load_checkpoint(part)
        for key in ("link_messages", "link_bytes", "cpu"):
            del state[key]
        state["method"] = {}
        torch.save(state, part)
    resumed = train(replace_run(cfg, resume=True))
    assert resumed.history[-1]["step"] == 12 and resumed.final["link_messages"] == 6 * 4
