"""The typed interaction record: checks, concat, to/save/load, and what evaluation and metrics make of it."""

import numpy as np
import pytest
import torch

from commchannels.agents import make_agents
from commchannels.envs.referential import AttributeValueGame
from commchannels.metrics import (
    bag_of_symbols_disentanglement,
    message_entropy,
    positional_disentanglement,
    topographic_similarity,
)
from commchannels.runs import CorruptCheckpointError
from commchannels.training.interaction import Interaction, language_file
from commchannels.training.referential_steps import evaluate, language_metrics, play_pool


def record(n=4, seed=0, split=0, **overrides) -> Interaction:
    g = torch.Generator().manual_seed(seed)
    fields = dict(sender_input=torch.rand(n, 1, 6, generator=g), message=torch.randint(1, 5, (n, 3), generator=g),
                  message_length=torch.full((n,), 3), receiver_input=torch.rand(n, 3, 6, generator=g),
                  receiver_output=torch.randn(n, 3, generator=g), labels=torch.randint(3, (n,), generator=g),
                  meanings=torch.randint(4, (n, 2), generator=g),
                  aux={"correct": torch.randint(2, (n,), generator=g).float(),
                       "split": torch.full((n,), split)},
                  info={"vocab_size": 5, "attribute_sizes": [4, 4], "splits": ["train", "test"]})
    fields.update(overrides)
    return Interaction(**fields)


def same(a: Interaction, b: Interaction) -> bool:
    tensors = ("sender_input", "message", "message_length", "receiver_input", "receiver_output", "labels", "meanings")
    return (all((getattr(a, f) is None and getattr(b, f) is None) or torch.equal(getattr(a, f), getattr(b, f))
                for f in tensors)
            and a.aux.keys() == b.aux.keys() and all(torch.equal(a.aux[k], b.aux[k]) for k in a.aux)
            and a.info == b.info)


def test_doctests():
    import doctest

    import commchannels.training.interaction as module

    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_save_load_round_trip_is_atomic_and_weights_only(tmp_path):
    original = record(receiver_output=torch.randn(4, 3, requires_grad=True))
    original.save(tmp_path / "sub" / "interaction.pt")
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["interaction.pt"]  # no temporary file left
    loaded = Interaction.load(tmp_path / "sub" / "interaction.pt")
    assert same(loaded, original.detach()) and not loaded.receiver_output.requires_grad
    data = torch.load(tmp_path / "sub" / "interaction.pt", weights_only=True)  # plain tensors and values
    assert data["format"] == "commchannels.Interaction"
    partial = record(sender_input=None, receiver_input=None)
    partial.save(tmp_path / "partial.pt")
    assert same(Interaction.load(tmp_path / "partial.pt"), partial)


def test_load_refuses_other_files_naming_them(tmp_path):
    torch.save({"meanings": torch.zeros(2, 2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="other.pt is not an interaction record"):
        Interaction.load(tmp_path / "other.pt")
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    with pytest.raises(CorruptCheckpointError, match="bad.pt"):
        Interaction.load(tmp_path / "bad.pt")
    with pytest.raises(FileNotFoundError):
        Interaction.load(tmp_path / "missing.pt")


def test_concat_to_and_rows():
    a, b = record(3, seed=1, split=0), record(2, seed=2, split=1)
    both = Interaction.concat([a, b])
    assert len(both) == 5 and torch.equal(both.message[3:], b.message)
    assert torch.equal(both.aux["split"], torch.tensor([0, 0, 0, 1, 1]))
    assert same(both[3:], b) and same(both[both.split_masks()["train"]], a)
    assert same(both.to("cpu"), both) and both.to("cpu") is not both
    assert both.summary()["mean_length"] == 3.0
    with pytest.raises(ValueError, match="interaction 1 lacks sender_input"):
        Interaction.concat([a, b.replace(sender_input=None)])
    with pytest.raises(ValueError, match="aux keys"):
        Interaction.concat([a, b.replace(aux={"correct": b.aux["correct"]})])
    with pytest.raises(ValueError, match="info"):
        Interaction.concat([a, b.replace(info={"vocab_size": 6})])
    with pytest.raises(ValueError, match="at least one"):
        Interaction.concat([])


@pytest.mark.parametrize("overrides, message", [
    (dict(message=torch.zeros(4)), r"message has shape \(4,\)"),
    (dict(meanings=torch.zeros(3, 2)), r"meanings has shape \(3, 2\); expected a tensor with 4 rows"),
    (dict(aux={"correct": torch.zeros(5)}), r"aux\['correct'\] has shape \(5,\)"),
    (dict(message_length=torch.zeros(4, 1)), "message_length has shape"),
])
def test_malformed_records_are_refused_naming_the_field(overrides, message):
    with pytest.raises(ValueError, match=message):
        record(**overrides)


def old_language_metrics(meanings: torch.Tensor, messages: torch.Tensor) -> dict[str, float]:
    """The metrics as they were computed from the evaluation's tensors before the Interaction."""
    meanings, messages = meanings.numpy(), messages.numpy()
    return {"topsim": topographic_similarity(meanings[:1000], messages[:1000]),
            "posdis": positional_disentanglement(meanings, messages),
            "bosdis": bag_of_symbols_disentanglement(meanings, messages),
            "entropy": message_entropy(messages)}


@pytest.fixture(scope="module")
def agents():
    game = AttributeValueGame(n_attributes=2, n_values=5, n_candidates=3, vocab_size=6, max_len=3,
                              holdout_fraction=0.2, sender_sees_candidates=True)
    torch.manual_seed(0)
    sender, receiver = make_agents(game, "gumbel", sender_hidden=16, receiver_hidden=16, embed=8)
    return game, sender, receiver


def test_evaluate_returns_the_record_and_its_summary(agents):
    game, sender, receiver = agents
    interaction, summary = evaluate(game, sender, receiver, "gumbel", torch.Generator().manual_seed(0), "test", 50)
    assert len(interaction) == 50 and interaction.sender_input.shape == (50, 3, 10)
    assert interaction.receiver_input.shape == (50, 3, 10) and interaction.receiver_output.shape == (50, 3)
    assert torch.equal(interaction.labels, interaction.receiver_output.argmax(-1)) == bool(
        interaction.aux["correct"].all())
    assert summary == {"acc": float(interaction.aux["correct"].mean()),
                       "mean_length": float(interaction.message_length.float().mean())}
    assert interaction.info["splits"][int(interaction.aux["split"][0])] == "test"
    # tokens after the first EOS read as EOS, as the metrics expect
    eos_seen = (interaction.message == 0).cumsum(dim=1) > 0
    assert not bool(interaction.message[eos_seen].any())
    assert language_metrics(interaction) == old_language_metrics(interaction.meanings, interaction.message)


def test_play_pool_plays_every_object_once_as_the_target(agents):
    game, sender, receiver = agents
    for split in ("train", "test"):
        pool = game.pool(split)
        interaction = play_pool(game, sender, receiver, "gumbel", split, torch.Generator().manual_seed(1), chunk=7)
        assert len(interaction) == len(pool.classes) and interaction.sender_input is None
        assert torch.equal(interaction.aux["object_id"], torch.arange(len(pool.classes)))
        assert torch.equal(interaction.meanings, pool.attributes)
        ids = interaction.aux["candidate_ids"]
        classes = pool.classes[ids]
        assert bool((classes.sort(dim=1).values.diff(dim=1) != 0).all())  # distinct classes in every game
        assert torch.equal(ids.gather(1, interaction.labels[:, None]).squeeze(1), interaction.aux["object_id"])
    language = language_file(interaction)
    assert language["split"] == ["test"] * len(interaction) and language["vocab_size"] == 6
    assert np.array_equal(language["messages"].numpy(), interaction.message.numpy())


def test_play_pool_over_its_limit_plays_a_seeded_sample_in_pool_order(agents):
    game, sender, receiver = agents
    n = len(game.pool("train").classes)

    def sample(seed: int, limit: int):
        return play_pool(game, sender, receiver, "gumbel", "train", torch.Generator().manual_seed(seed), limit=limit)

    sampled = sample(1, 5)
    ids = sampled.aux["object_id"]
    assert len(sampled) == 5 and len(ids.unique()) == 5 and bool((ids.diff() > 0).all()) and int(ids.max()) < n
    assert torch.equal(sampled.meanings, game.pool("train").attributes[ids])
    assert torch.equal(ids, sample(1, 5).aux["object_id"]) and not torch.equal(ids, sample(2, 5).aux["object_id"])
    assert torch.equal(sample(1, n).aux["object_id"], torch.arange(n))  # a limit the pool fits is no limit


def test_attribute_accuracy_of_reconstruction_games():
    # two attributes: attribute 0 guessed right twice of 3, attribute 1 always
    guesses = torch.tensor([[0, 1], [1, 0], [2, 1]])
    labels = torch.tensor([[0, 1], [1, 0], [0, 1]])
    games = record(n=3, labels=labels, aux={"guess": guesses})
    assert games.attribute_accuracy() == pytest.approx([2 / 3, 1.0])
    with pytest.raises(ValueError, match="attribute_accuracy needs reconstruction games"):
        record().attribute_accuracy()  # discrimination labels
