"""Cells: stacked GRU / LSTM and Transformer senders and readers, and the learned temperature."""

import pytest
import torch

from commchannels.agents import METHODS, MessageEncoder, Receiver, make_channel
from commchannels.agents.cells import (
    RecurrentCell,
    TransformerCell,
    TransformerReader,
    check_cell_options,
    make_reader,
)
from commchannels.agents.channels import GumbelChannel


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("cell, layers", [("transformer", 1), ("transformer", 2), ("gru", 2), ("lstm", 3)])
def test_message_shapes_for_every_cell_and_method(method, cell, layers):
    torch.manual_seed(0)
    channel = make_channel(method, hidden=16, vocab_size=6, max_len=3, cell=cell, layers=layers, heads=2)
    message = channel(torch.randn(5, 16))
    assert message.tokens.shape == (5, 3) and message.tokens.dtype == torch.long
    if method == "reinforce":
        assert message.log_probs.shape == message.entropies.shape == (5, 3)
    else:
        assert message.symbols.shape == (5, 3, 6)
    greedy = channel(torch.randn(5, 16), greedy=True)
    assert greedy.tokens.shape == (5, 3)


@pytest.mark.parametrize("cell, layers", [("transformer", 2), ("gru", 2), ("lstm", 2)])
@pytest.mark.parametrize("method", ["gumbel", "st-gumbel", "continuous"])
def test_gradients_reach_every_layer_through_relaxed_symbols(cell, layers, method):
    torch.manual_seed(1)
    channel = make_channel(method, hidden=16, vocab_size=5, max_len=3, cell=cell, layers=layers, heads=4)
    h = torch.randn(4, 16, requires_grad=True)
    # the last position only: it reaches the first one through the fed-back embeddings
    (channel(h).symbols[:, -1] * torch.randn(5)).sum().backward()
    assert float(h.grad.abs().sum()) > 0 and float(channel.embedding.grad.abs().sum()) > 0
    without = [name for name, p in channel.named_parameters() if p.grad is None or not bool(p.grad.any())]
    assert without == [], without


@pytest.mark.parametrize("cell", ["transformer", "gru"])
def test_reinforce_log_probs_carry_gradients(cell):
    torch.manual_seed(2)
    channel = make_channel("reinforce", hidden=8, vocab_size=5, max_len=3, cell=cell, layers=2, heads=2)
    h = torch.randn(4, 8, requires_grad=True)
    channel(h).log_probs.sum().backward()
    assert float(h.grad.abs().sum()) > 0


def test_stacked_recurrent_cell_starts_from_the_hidden_vector_in_the_first_layer():
    cell = RecurrentCell("lstm", input_size=3, hidden=4, layers=2)
    h = torch.randn(2, 4)
    state = cell.start(h)
    assert len(state) == 2 and torch.equal(state[0][0], h) and not bool(state[1][0].any())
    out, new_state = cell(torch.randn(2, 3), state)
    assert out.shape == (2, 4) and torch.equal(out, new_state[1][0])  # the output is the top layer's


def test_transformer_sender_is_causal_and_bounded_by_max_len():
    torch.manual_seed(3)
    cell = TransformerCell(input_size=3, hidden=8, max_len=2, layers=2, heads=2)
    h, x1, x2 = torch.randn(2, 8), torch.randn(2, 3), torch.randn(2, 3)
    out1, state = cell(x1, cell.start(h))
    # position 1 re-encoded with a later position present gives the same output (causal mask)
    sequence = torch.stack([*state, cell.project(x2)], dim=1) + cell.position[:3]
    from commchannels.agents.cells import causal_mask

    full = cell.stack(sequence, mask=causal_mask(3), is_causal=True)
    assert torch.allclose(full[:, 1], out1, atol=1e-5)
    _, state = cell(x2, state)
    with pytest.raises(ValueError, match="max_len=2"):
        cell(x1, state)


@pytest.mark.parametrize("cell", ["transformer", "gru", "lstm"])
def test_reader_output_at_t_ignores_the_symbols_after_t(cell):
    torch.manual_seed(4)
    encoder = MessageEncoder(vocab_size=7, hidden=16, embed=8, cell=cell, layers=2, heads=4, max_len=4)
    tokens = torch.randint(7, (3, 4))
    changed = tokens.clone()
    changed[:, 2:] = (changed[:, 2:] + 1) % 7
    a, b = encoder(tokens), encoder(changed)
    assert a.shape == (3, 4, 16)
    assert torch.allclose(a[:, :2], b[:, :2], atol=1e-5)  # the answers after 1 and 2 symbols
    assert not torch.allclose(a[:, 2:], b[:, 2:], atol=1e-5)
    one_hots = torch.nn.functional.one_hot(tokens, 7).float()
    assert torch.allclose(encoder(one_hots), a, atol=1e-5)  # tokens and their one-hots read the same


def test_transformer_receiver_scores_candidates_and_passes_gradients_to_symbols():
    torch.manual_seed(5)
    receiver = Receiver((12,), vocab_size=5, hidden=16, cell="transformer", layers=2, heads=4, max_len=3)
    symbols = torch.rand(4, 3, 5, requires_grad=True)
    out = receiver(symbols, torch.rand(4, 6, 12))
    assert out.shape == (4, 3, 6)
    out.sum().backward()
    assert float(symbols.grad.abs().sum()) > 0
    assert receiver.score_shared(symbols.detach(), torch.rand(10, 12)).shape == (4, 3, 10)
    with pytest.raises(ValueError, match="max_len=3"):
        receiver(torch.randint(5, (4, 5)), torch.rand(4, 6, 12))


def test_transformer_cells_validate_their_options():
    with pytest.raises(ValueError, match="heads=3 does not divide hidden=16"):
        make_channel("gumbel", 16, 5, 3, cell="transformer", heads=3)
    with pytest.raises(ValueError, match="layers=0 is out of range"):
        make_channel("gumbel", 16, 5, 3, cell="gru", layers=0)
    with pytest.raises(ValueError, match="needs max_len"):
        make_reader("transformer", 8, 16)
    with pytest.raises(ValueError, match="cell='rnn'"):
        check_cell_options("rnn", 16)
    assert isinstance(make_reader("transformer", 8, 16, max_len=2), TransformerReader)


def test_default_sized_transformer_stays_within_a_few_times_the_gru():
    def count(module):
        return sum(p.numel() for p in module.parameters())

    gru = make_channel("gumbel", 128, 16, 4, cell="gru")
    transformer = make_channel("gumbel", 128, 16, 4, cell="transformer")
    assert count(transformer) < 2.5 * count(gru)
    assert count(MessageEncoder(16, 128, cell="transformer", max_len=4)) < 2.5 * count(MessageEncoder(16, 128))


# ---------------------------------------------------------------------- learned temperature
def test_learned_temperature_starts_at_temperature_and_receives_gradients():
    torch.manual_seed(6)
    channel = make_channel("gumbel", 8, 5, 3, temperature=2.0, temperature_learnable=True, temperature_min=0.5)
    assert isinstance(channel, GumbelChannel) and channel.learnable
    assert float(channel.temperature.detach()) == pytest.approx(2.0, rel=1e-5)
    (channel(torch.randn(16, 8)).symbols * torch.randn(5)).sum().backward()
    assert channel.temperature_weight.grad is not None and float(channel.temperature_weight.grad.abs()) > 0
    assert "temperature_weight" in channel.state_dict()  # saved and resumed with the agent
    with pytest.raises(ValueError, match="temperature is learned"):
        channel.temperature = 1.0


@pytest.mark.parametrize("method", ["gumbel", "st-gumbel"])
def test_learned_temperature_never_falls_below_its_floor(method):
    torch.manual_seed(7)
    channel = make_channel(method, 8, 5, 2, temperature=1.0, temperature_learnable=True, temperature_min=0.3)
    optimizer = torch.optim.SGD([channel.temperature_weight], lr=50.0)
    for _ in range(20):  # push the temperature down as hard as possible
        optimizer.zero_grad()
        channel.temperature.backward()
        optimizer.step()
        assert float(channel.temperature.detach()) >= 0.3
    assert float(channel.temperature.detach()) == pytest.approx(0.3, abs=1e-3)


def test_fixed_temperature_is_a_settable_float_and_learned_needs_room_above_the_floor():
    channel = make_channel("gumbel", 8, 5, 2, temperature=1.5)
    assert channel.temperature == 1.5 and not any("temperature" in n for n, _ in channel.named_parameters())
    channel.temperature = 0.7
    assert channel.temperature == 0.7
    with pytest.raises(ValueError, match="temperature=0.0"):
        channel.temperature = 0.0
    with pytest.raises(ValueError, match="temperature=0.5 is not above temperature_min=0.5"):
        make_channel("gumbel", 8, 5, 2, temperature=0.5, temperature_learnable=True, temperature_min=0.5)
