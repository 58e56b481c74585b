"""The referential trainer with Transformer and multi-layer cells, and a learned temperature."""

import pytest
import torch

from commchannels.agents.senders import agent_options, make_agents
from commchannels.runs import load_checkpoint
from commchannels.training.referential import Config, train

TINY = dict(n_attributes=2, n_values=5, n_candidates=3, vocab_size=10, max_len=2, holdout_fraction=0.2)


def tiny(**overrides) -> Config:
    values = {**dict(sender_hidden=32, receiver_hidden=32, embed=16, batch_size=64, eval_every=50, eval_games=256,
                     metrics_every=100, lr=2e-3, steps=100), **overrides}
    env = {k: values.pop(k) for k in list(values) if k in TINY}
    return Config(env={**TINY, **env}, run={"run_dir": values.pop("run_dir", None), "progress": False}, **values)


@pytest.mark.parametrize("method", ["gumbel", "st-gumbel", "continuous", "reinforce"])
def test_each_method_learns_above_chance_with_a_transformer(method):
    # REINFORCE explores with a larger entropy bonus by default and needs more updates
    result = train(tiny(method=method, cell="transformer", heads=4, steps=200 if method == "reinforce" else 100))
    assert result.final["train_acc"] > 1 / 3 + 0.2, result.final


@pytest.mark.parametrize("cell", ["gru", "lstm", "transformer"])
def test_two_layers_train_and_their_saved_agents_load(tmp_path, cell):
    cfg = tiny(method="gumbel", cell=cell, layers=2, heads=2, run_dir=str(tmp_path / cell), steps=60, eval_every=30)
    result = train(cfg)
    saved = load_checkpoint(tmp_path / cell / "agents.pt")
    assert any(".1." in key for key in saved["sender"])  # the second layer's weights
    sender, receiver = make_agents(cfg.make_game(), cfg.method, cfg.cell, cfg.sender_hidden, cfg.receiver_hidden,
                                   cfg.embed, **agent_options(cfg))
    sender.load_state_dict(saved["sender"])  # strict: the same modules as the trained agents
    receiver.load_state_dict(saved["receiver"])
    if cell == "gru":
        assert result.final["train_acc"] > 1 / 3 + 0.2, result.final


def test_learned_temperature_is_trained_and_saved(tmp_path):
    cfg = tiny(method="st-gumbel", temperature=2.0, temperature_min=0.5, temperature_learnable=True,
               run_dir=str(tmp_path / "run"))
    result = train(cfg)
    channel = result.extras["sender"].channel
    temperature = float(channel.temperature.detach())
    assert temperature >= 0.5 and temperature != pytest.approx(2.0, abs=1e-4)  # the optimiser moved it
    saved = load_checkpoint(tmp_path / "run" / "agents.pt")["sender"]["channel.temperature_weight"]
    assert torch.equal(saved, channel.temperature_weight.detach())
    assert result.final["train_acc"] > 1 / 3 + 0.2, result.final


@pytest.mark.parametrize("overrides, message", [
    (dict(cell="transformer", heads=3), "heads=3 does not divide sender_hidden=32"),
    (dict(cell="transformer", heads=4, receiver_hidden=30), "heads=4 does not divide receiver_hidden=30"),
    (dict(cell="gru", heads=3), None),  # heads matter to the transformer only
    (dict(layers=0), "layers=0 is out of range"),
    (dict(layers=2.0), "layers=2.0 is not an integer"),
    (dict(cell="rnn"), "cell='rnn'"),
    (dict(temperature_learnable=True, temperature=0.4), "temperature=0.4 is not above temperature_min=0.5"),
    (dict(temperature_learnable=True, temperature_decay=0.99), "temperature_decay=0.99 anneals"),
    (dict(temperature_learnable="yes"), "temperature_learnable='yes' is not a bool"),
])
def test_bad_cell_and_temperature_options_fail_at_once(overrides, message):
    if message is None:
        assert tiny(**overrides).heads == 3
        return
    with pytest.raises(ValueError, match=message):
        tiny(**overrides)
