"""Receivers: per-position outputs, tokens vs one-hots, answers at the message length, guesses."""

import pytest
import torch

from commchannels.agents import MessageEncoder, Receiver, make_agents, output_at, sample_guess
from commchannels.envs.referential import AttributeValueGame, DigitsGame


def test_tokens_and_their_one_hots_read_the_same():
    torch.manual_seed(0)
    encoder = MessageEncoder(vocab_size=7, hidden=16, cell="lstm")
    tokens = torch.randint(7, (4, 3))
    one_hots = torch.nn.functional.one_hot(tokens, 7).float()
    assert torch.allclose(encoder(tokens), encoder(one_hots), atol=1e-6)


def test_discrimination_outputs_per_position_and_candidate():
    torch.manual_seed(1)
    receiver = Receiver((12,), vocab_size=5, hidden=16)
    out = receiver(torch.randint(5, (4, 3)), torch.rand(4, 6, 12))
    assert out.shape == (4, 3, 6)
    with pytest.raises(ValueError, match="candidates"):
        receiver(torch.randint(5, (4, 3)))


def test_reconstruction_outputs_every_attribute_value():
    receiver = Receiver((12,), vocab_size=5, hidden=16, mode="reconstruction", attribute_sizes=(4, 4, 4))
    assert receiver(torch.randint(5, (2, 3))).shape == (2, 3, 12)
    with pytest.raises(ValueError, match="attribute_sizes"):
        Receiver((12,), vocab_size=5, hidden=16, mode="reconstruction")
    with pytest.raises(ValueError, match="mode='guess'"):
        Receiver((12,), vocab_size=5, hidden=16, mode="guess")


def test_gradient_reaches_symbols_and_candidates():
    receiver = Receiver((1, 8, 8), vocab_size=5, hidden=8)
    symbols = torch.rand(3, 2, 5, requires_grad=True)
    receiver(symbols, torch.rand(3, 4, 1, 8, 8)).sum().backward()
    assert float(symbols.grad.abs().sum()) > 0


def test_output_at_reads_the_answer_after_the_last_symbol():
    outputs = torch.arange(2 * 3 * 2).float().reshape(2, 3, 2)
    assert torch.equal(output_at(outputs, torch.tensor([1, 3])), torch.stack([outputs[0, 0], outputs[1, 2]]))


def test_sample_guess_discrimination_and_reconstruction():
    torch.manual_seed(2)
    logits = torch.tensor([[0.0, 10.0, 0.0]]).repeat(5, 1).requires_grad_()
    guess, log_prob, entropy = sample_guess(logits, greedy=True)
    assert guess.tolist() == [1] * 5 and log_prob.shape == entropy.shape == (5,)
    log_prob.sum().backward()
    assert logits.grad is not None
    guess, log_prob, entropy = sample_guess(torch.randn(5, 7), attribute_sizes=(3, 4))
    assert guess.shape == (5, 2) and bool((guess[:, 0] < 3).all()) and bool((guess[:, 1] < 4).all())
    assert bool((entropy > 0).all()) and bool((log_prob < 0).all())


@pytest.mark.parametrize("game", [
    AttributeValueGame(n_attributes=2, n_values=4, n_candidates=3, vocab_size=5, max_len=2,
                       sender_sees_candidates=True),
    DigitsGame(n_candidates=4, vocab_size=6, max_len=1, mode="reconstruction"),
])
def test_make_agents_fit_the_game(game):
    sender, receiver = make_agents(game, "gumbel", sender_hidden=16, receiver_hidden=16, embed=8)
    batch = game.sample(6, torch.Generator().manual_seed(0))
    message = sender(batch.sender_objects)
    assert message.tokens.shape == (6, game.max_len)
    out = receiver(message.symbols, batch.candidates)
    assert out.shape == (6, game.max_len, game.receiver_output_size)
    assert game.receiver_loss(batch, out[:, -1]).shape == (6,)


def test_additive_reader_adds_one_reading_per_position():
    torch.manual_seed(0)
    encoder = MessageEncoder(vocab_size=5, hidden=8, max_len=3, additive=True)
    messages = torch.tensor([[1, 2, 3], [1, 4, 3], [2, 2, 3], [2, 4, 3]])
    states = encoder(messages)
    assert states.shape == (4, 3, 8)
    assert torch.equal(states[0, 0], states[1, 0])  # the answer after t symbols ignores later ones
    # additive: changing position 0 shifts the state by the same vector whatever position 1 says
    assert torch.allclose(states[2, 2] - states[0, 2], states[3, 2] - states[1, 2], atol=1e-5)
    # the same symbol means something else at another position
    assert not torch.allclose(encoder(torch.tensor([[2, 1]]))[0, 1], encoder(torch.tensor([[1, 2]]))[0, 1])
    one_hots = torch.nn.functional.one_hot(messages, 5).float()
    assert torch.allclose(encoder(one_hots), states, atol=1e-6)
    with pytest.raises(ValueError, match="additive=True needs max_len"):
        MessageEncoder(vocab_size=5, hidden=8, additive=True)
    with pytest.raises(ValueError, match="reads at most 3 positions, got 4"):
        encoder(torch.randint(5, (2, 4)))


def test_attention_sender_and_additive_receiver_are_checked_against_the_game():
    hard = AttributeValueGame(n_attributes=3, n_values=4, vocab_size=6, max_len=3, mode="reconstruction")
    sender, receiver = make_agents(hard, "gumbel", sender_hidden=16, receiver_hidden=16, embed=8,
                                   sender_attention=True, receiver_additive=True)
    batch = hard.sample(5, torch.Generator().manual_seed(0))
    message = sender(batch.sender_objects)
    assert message.symbols.shape == (5, 3, 6) and receiver(message.symbols).shape == (5, 3, 12)
    assert not hasattr(sender.channel, "cell")  # each position's symbol comes from its own vector
    with pytest.raises(ValueError, match=r"needs attribute-value objects .* shape \(1, 8, 8\)"):
        make_agents(DigitsGame(), "gumbel", sender_attention=True)
    seeing = AttributeValueGame(n_attributes=3, n_values=4, sender_sees_candidates=True)
    with pytest.raises(ValueError, match="the sender sees 5 objects; expected sender_sees_candidates=False"):
        make_agents(seeing, "gumbel", sender_attention=True)
    with pytest.raises(ValueError, match="memoryless already"):
        make_agents(hard, "gumbel", sender_attention=True, sender_memoryless=True)
