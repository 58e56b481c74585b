"""Channels: message shapes, greedy determinism, gradients through relaxed symbols, EOS weights."""

import pytest
import torch

from commchannels.agents import (
    METHODS,
    ContinuousChannel,
    GumbelChannel,
    ReinforceChannel,
    make_channel,
    stopping_weights,
)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("max_len", [1, 3])
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_message_shapes(method, max_len, cell):
    torch.manual_seed(0)
    channel = make_channel(method, hidden=16, vocab_size=6, max_len=max_len, cell=cell)
    message = channel(torch.randn(5, 16))
    assert message.tokens.shape == (5, max_len) and message.tokens.dtype == torch.long
    assert int(message.tokens.min()) >= 0 and int(message.tokens.max()) < 6
    if method == "reinforce":
        assert message.symbols is None
        assert message.log_probs.shape == message.entropies.shape == (5, max_len)
        assert bool((message.log_probs <= 0).all())
    else:
        assert message.symbols.shape == (5, max_len, 6)
        assert torch.equal(message.symbols.argmax(-1) if method != "continuous" else message.tokens,
                           message.tokens)
    if method == "continuous":
        assert bool((message.tokens > 0).all())  # fixed length: the discrete view never says EOS


def test_factory_types_and_bad_method():
    assert isinstance(make_channel("reinforce", 8, 4, 2), ReinforceChannel)
    assert isinstance(make_channel("continuous", 8, 4, 2), ContinuousChannel)
    assert make_channel("st-gumbel", 8, 4, 2).straight_through
    assert not make_channel("gumbel", 8, 4, 2).straight_through
    with pytest.raises(ValueError, match="method='ppo'"):
        make_channel("ppo", 8, 4, 2)
    with pytest.raises(ValueError, match="cell='rnn'"):
        make_channel("gumbel", 8, 4, 2, cell="rnn")


@pytest.mark.parametrize("method", ["reinforce", "gumbel", "st-gumbel"])
def test_greedy_is_deterministic_argmax(method):
    torch.manual_seed(1)
    channel = make_channel(method, hidden=8, vocab_size=5, max_len=3)
    h = torch.randn(4, 8)
    a, b = channel(h, greedy=True), channel(h, greedy=True)
    assert torch.equal(a.tokens, b.tokens)
    if a.symbols is not None:
        assert torch.equal(a.symbols, torch.nn.functional.one_hot(a.tokens, 5).float())


@pytest.mark.parametrize("method", ["gumbel", "st-gumbel", "continuous"])
def test_gradients_flow_through_relaxed_symbols_into_the_sender(method):
    torch.manual_seed(2)
    channel = make_channel(method, hidden=8, vocab_size=5, max_len=3, temperature=1.0)
    h = torch.randn(4, 8, requires_grad=True)
    message = channel(h)
    # a loss on the last position only reaches the first through the fed-back embedding
    (message.symbols[:, -1] * torch.randn(5)).sum().backward()
    assert h.grad is not None and float(h.grad.abs().sum()) > 0
    assert float(channel.embedding.grad.abs().sum()) > 0


def test_reinforce_log_probs_carry_gradients():
    torch.manual_seed(3)
    channel = make_channel("reinforce", hidden=8, vocab_size=5, max_len=2)
    h = torch.randn(4, 8, requires_grad=True)
    channel(h).log_probs.sum().backward()
    assert float(h.grad.abs().sum()) > 0


def test_temperature_validation():
    with pytest.raises(ValueError, match="temperature"):
        GumbelChannel(8, 4, 2, temperature=0.0)


def test_stopping_weights_sum_to_one_and_match_hand_computation():
    eos = torch.tensor([[0.5, 0.5, 0.5], [1.0, 0.3, 0.2], [0.0, 0.0, 0.0]], requires_grad=True)
    w = stopping_weights(eos)
    assert torch.allclose(w.sum(dim=1), torch.ones(3))
    # stop at 0 w.p. .5, at 1 w.p. .25, never stopped (.125) adds to the last position's .125
    assert torch.allclose(w[0], torch.tensor([0.5, 0.25, 0.25]))
    assert torch.allclose(w[1], torch.tensor([1.0, 0.0, 0.0]))
    assert torch.allclose(w[2], torch.tensor([0.0, 0.0, 1.0]))  # never stops: cut at max_len
    (w * torch.tensor([1.0, 2.0, 3.0])).sum().backward()  # expected length is differentiable
    assert eos.grad is not None and float(eos.grad.abs().sum()) > 0


def test_stopping_weights_random_rows_sum_to_one():
    eos = torch.rand(64, 6, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(stopping_weights(eos).sum(dim=1), torch.ones(64), atol=1e-6)
    assert torch.allclose(stopping_weights(eos[:, :1]), torch.ones(64, 1))


@pytest.mark.parametrize("method", ["reinforce", "gumbel", "continuous"])
@pytest.mark.parametrize("cell", ["gru", "lstm", "transformer"])
def test_memoryless_symbols_depend_on_the_position_not_on_earlier_symbols(method, cell):
    torch.manual_seed(3)
    channel = make_channel(method, hidden=8, vocab_size=5, max_len=3, cell=cell, heads=2, memoryless=True)
    h = torch.randn(4, 8)
    forced = channel.forced_logits(h, torch.randint(5, (4, 3)))
    assert forced.shape == (4, 3, 5)
    assert torch.equal(forced, channel.forced_logits(h, torch.randint(5, (4, 3))))  # the tokens are ignored
    greedy = channel(h, greedy=True)
    if method != "continuous":
        assert torch.equal(greedy.tokens, forced.argmax(-1))
    assert not torch.equal(forced[:, 0], forced[:, 1])  # positions differ
    assert not hasattr(channel, "embedding") and channel.positions.shape == (3, 32)
    with pytest.raises(ValueError, match="memoryless"):
        make_channel(method, 8, 5, 3, memoryless="yes")


@pytest.mark.parametrize("method", ["reinforce", "gumbel", "continuous"])
def test_per_position_channel_reads_one_vector_per_position(method):
    torch.manual_seed(4)
    channel = make_channel(method, hidden=8, vocab_size=5, max_len=3, per_position=True)
    h = torch.randn(4, 3, 8)
    forced = channel.forced_logits(h, torch.randint(5, (4, 3)))
    assert torch.allclose(forced, channel.head(h))
    if method != "continuous":
        assert torch.equal(channel(h, greedy=True).tokens, forced.argmax(-1))
    assert channel.memoryless and not hasattr(channel, "cell")
    with pytest.raises(ValueError, match=r"expected \(B, 3, hidden\) vectors, one per position, got \(4, 8\)"):
        channel(torch.randn(4, 8))
