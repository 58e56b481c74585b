"""The batched referential core and the game base class."""

import pytest
import torch

from commchannels.envs.referential import AttributeValueGame, BatchedReferentialEnv, DigitsGame


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_sample_shapes_and_target_position():
    game = AttributeValueGame(n_attributes=3, n_values=4, n_candidates=5)
    batch = game.sample(64, gen())
    assert batch.candidates.shape == (64, 5, 12)
    assert batch.sender_objects.shape == (64, 1, 12)
    target = batch.candidates[torch.arange(64), batch.target_position]
    assert torch.equal(target, batch.sender_objects[:, 0])
    # the target's one-hot encodes its attributes
    assert torch.equal(target.view(64, 3, 4).argmax(-1), batch.target_attributes)


def test_candidates_are_distinct_objects_and_positions_shuffled():
    game = AttributeValueGame(n_attributes=4, n_values=8, n_candidates=5)
    batch = game.sample(2048, gen(1))
    ids = batch.candidate_ids.sort(dim=1).values
    assert not (ids[:, 1:] == ids[:, :-1]).any()
    counts = torch.bincount(batch.target_position, minlength=5).float()
    assert (counts / counts.sum() - 0.2).abs().max() < 0.05


def test_digits_distractors_are_other_classes():
    game = DigitsGame(n_candidates=10)
    batch = game.sample(256, gen(2))
    labels = game.pool("train").attributes[batch.candidate_ids, 0]
    assert torch.equal(labels.sort(dim=1).values, torch.arange(10).expand(256, 10))


def test_sender_sees_candidates_target_first():
    game = AttributeValueGame(n_attributes=2, n_values=5, n_candidates=4, sender_sees_candidates=True)
    batch = game.sample(32, gen(3))
    assert batch.sender_objects.shape == (32, 4, 10)
    target = batch.candidates[torch.arange(32), batch.target_position]
    assert torch.equal(batch.sender_objects[:, 0], target)


def test_holdout_split_is_disjoint_and_covers_every_value():
    game = AttributeValueGame(n_attributes=3, n_values=5, holdout_fraction=0.2)
    train, test = game.pool("train").attributes, game.pool("test").attributes
    assert len(train) + len(test) == 125 and len(test) == 25
    as_set = lambda a: {tuple(r) for r in a.tolist()}  # noqa: E731
    assert not as_set(train) & as_set(test)
    for attribute in range(3):
        assert set(train[:, attribute].tolist()) == set(range(5))


def test_message_lengths_count_eos():
    game = AttributeValueGame(max_len=4)
    messages = torch.tensor([[3, 0, 5, 6], [1, 2, 3, 4], [0, 0, 0, 0], [2, 2, 0, 1]])
    assert game.message_lengths(messages).tolist() == [2, 4, 1, 3]
    assert game.mask_after_eos(messages).tolist() == [[3, 0, 0, 0], [1, 2, 3, 4], [0] * 4, [2, 2, 0, 0]]


def test_rewards_discrimination_and_length_cost():
    game = AttributeValueGame(n_attributes=2, n_values=4, n_candidates=3, length_cost=0.1, max_len=3)
    batch = game.sample(4, gen(4))
    guesses = batch.target_position.clone()
    guesses[0] = (guesses[0] + 1) % 3
    messages = torch.tensor([[1, 0, 0], [1, 2, 3], [0, 0, 0], [4, 0, 0]])
    rewards = game.rewards(batch, messages, guesses)
    assert rewards["receiver"].tolist() == [0.0, 1.0, 1.0, 1.0]
    assert torch.allclose(rewards["sender"], torch.tensor([-0.2, 0.7, 0.9, 0.8]))


def test_reconstruction_partial_credit_and_loss():
    game = AttributeValueGame(n_attributes=2, n_values=4, mode="reconstruction")
    batch = game.sample(3, gen(5))
    guesses = batch.target_attributes.clone()
    guesses[0, 0] = (guesses[0, 0] + 1) % 4
    assert game.score(batch, guesses).tolist() == [0.5, 1.0, 1.0]
    logits = torch.zeros(3, game.receiver_output_size, requires_grad=True)
    loss = game.receiver_loss(batch, logits)
    assert torch.allclose(loss, torch.full((3,), 2 * torch.log(torch.tensor(4.0))))
    loss.sum().backward()
    assert logits.grad is not None


def test_core_turns_and_early_eos():
    game = AttributeValueGame(n_attributes=2, n_values=4, n_candidates=3, vocab_size=5, max_len=3)
    core = BatchedReferentialEnv(game, batch_size=2, seed=0)
    core.reset()
    with pytest.raises(ValueError, match="still being sent"):
        core.guess(torch.zeros(2))
    assert core.send(torch.tensor([0, 2])).tolist() == [False, True]
    core.send(torch.tensor([4, 3]))  # game 0 is done: its token is ignored
    assert core.messages.tolist() == [[0, 0, 0], [2, 3, 0]]
    core.send(torch.tensor([1, 1]))
    assert core.lengths.tolist() == [1, 3]
    assert core.observation("sender")["message"].tolist() == [[1, 0, 0], [3, 4, 2]]
    with pytest.raises(ValueError, match="receiver must act"):
        core.send(torch.tensor([1, 1]))
    rewards = core.guess(core.batch.target_position)
    assert rewards["correct"].tolist() == [1.0, 1.0]


def test_core_rejects_bad_tokens_and_guesses():
    game = AttributeValueGame(n_attributes=2, n_values=4, n_candidates=3, vocab_size=5, max_len=1)
    core = BatchedReferentialEnv(game, batch_size=2, seed=0)
    with pytest.raises(ValueError, match="reset"):
        core.send(torch.tensor([1, 1]))
    core.reset()
    with pytest.raises(ValueError, match="token 5 is out of range"):
        core.send(torch.tensor([1, 5]))
    core.send(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"candidate index in \[0, 3\)"):
        core.guess(torch.tensor([0, 3]))


def test_core_is_deterministic_under_seed_and_ignores_global_rng():
    game = AttributeValueGame()
    a = BatchedReferentialEnv(game, 128)
    b = BatchedReferentialEnv(game, 128)
    first = a.reset(seed=7)
    torch.manual_seed(123)
    torch.rand(10)
    second = b.reset(seed=7)
    assert torch.equal(first.candidate_ids, second.candidate_ids)
    assert torch.equal(a.reset().candidate_ids, b.reset().candidate_ids)  # streams continue alike
    assert not torch.equal(a.reset(seed=8).candidate_ids, first.candidate_ids)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"vocab_size": 1}, r"vocab_size=1 is out of range"),
        ({"n_candidates": 1}, r"n_candidates=1"),
        ({"max_len": 0}, r"max_len=0"),
        ({"mode": "guess"}, r"mode='guess' is not allowed; expected one of \['discrimination', 'reconstruction'\]"),
        ({"length_cost": -1.0}, r"length_cost=-1.0"),
        ({"n_values": 1}, r"n_values=1"),
        ({"holdout_fraction": 0.9}, r"holdout_fraction=0.9"),
    ],
)
def test_bad_game_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AttributeValueGame(**kwargs)


def test_more_candidates_than_objects_is_rejected():
    game = AttributeValueGame(n_attributes=1, n_values=3, n_candidates=5, holdout_fraction=0.0)
    with pytest.raises(ValueError, match="n_candidates=5 is more than the 3 distinct objects"):
        BatchedReferentialEnv(game, 4)
    with pytest.raises(ValueError, match="n_candidates=11 is more than the 10"):
        BatchedReferentialEnv(DigitsGame(n_candidates=11), 4)
