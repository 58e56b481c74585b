"""PettingZoo views of the referential game: official checkers, turn order, errors, rendering."""

import numpy as np
import pytest
from pettingzoo.test import api_test, parallel_api_test, seed_test

from commchannels.envs import referential_v0

VARIANTS = [
    {"n_attributes": 2, "n_values": 4, "n_candidates": 3, "vocab_size": 5, "max_len": 3},
    {"objects": "digits", "n_candidates": 4, "max_len": 2},
    {"mode": "reconstruction", "n_attributes": 3, "n_values": 3, "max_len": 2},
    {"sender_sees_candidates": True, "max_len": 1, "length_cost": 0.1},
]


@pytest.mark.parametrize("kwargs", VARIANTS)
def test_pettingzoo_checkers(kwargs):
    api_test(referential_v0.env(**kwargs), num_cycles=100)
    parallel_api_test(referential_v0.parallel_env(**kwargs), num_cycles=100)
    seed_test(lambda: referential_v0.env(**kwargs), num_cycles=20)


def test_aec_turn_order_and_rewards():
    env = referential_v0.env(n_attributes=2, n_values=4, n_candidates=3, vocab_size=5, max_len=3)
    env.reset(seed=3)
    assert env.agent_selection == "sender"
    env.step(2)
    assert env.agent_selection == "sender"
    env.step(0)  # EOS ends the message after two tokens
    assert env.agent_selection == "receiver"
    obs = env.observe("receiver")
    assert obs["message"].tolist() == [3, 1, 0]
    target = int(env.unwrapped.current.batch().target_position[0])
    env.step(target)
    assert env.rewards == {"sender": 1.0, "receiver": 1.0}
    assert all(env.terminations.values())
    assert env.infos["sender"]["message"] == [2, 0]


def test_parallel_turns_and_wrong_agent():
    env = referential_v0.parallel_env(n_candidates=3, vocab_size=5, max_len=2)
    obs, infos = env.reset(seed=1)
    assert infos["sender"]["is_turn"] and not infos["receiver"]["is_turn"]
    with pytest.raises(ValueError, match="it is the sender's turn"):
        env.step({"receiver": 0})
    with pytest.raises(ValueError, match=r"actions for \['spy'\] are not allowed"):
        env.step({"sender": 1, "receiver": 0, "spy": 1})
    _, _, _, _, infos = env.step({"sender": 1, "receiver": 0})
    _, _, _, _, infos = env.step({"sender": 3, "receiver": 0})
    assert infos["receiver"]["is_turn"] and not infos["sender"]["is_turn"]
    target = int(env.current.batch().target_position[0])
    _, rewards, terms, _, infos = env.step({"sender": 0, "receiver": target})
    assert rewards == {"sender": 1.0, "receiver": 1.0} and all(terms.values())
    assert infos["sender"]["message"].tolist() == [1, 3] and env.agents == []
    assert infos["sender"]["correct"] == 1.0 and not any(info["is_turn"] for info in infos.values())
    with pytest.raises(ValueError, match="finished episode"):
        env.step({})


def test_render_modes():
    env = referential_v0.env(render_mode="ansi", max_len=1)
    env.reset(seed=0)
    env.step(3)
    env.step(0)
    text = env.render()
    assert "target:" in text and "message:    3" in text and "guess:" in text
    image_env = referential_v0.env(objects="digits", render_mode="rgb_array", n_candidates=3)
    image_env.reset(seed=0)
    frame = image_env.render()
    assert frame.dtype == np.uint8 and frame.shape == (68, 3 * 68, 3)
    # attribute objects are drawn as their one-hot grid (one row per attribute), so SB3's
    # make_vec_env, which asks for rgb_array, works on every game
    strip_env = referential_v0.env(render_mode="rgb_array", n_attributes=2, n_values=4, n_candidates=3)
    strip_env.reset(seed=0)
    strip = strip_env.render()
    assert strip.dtype == np.uint8 and strip.shape == (2 * 8 + 4, 3 * (4 * 8 + 4), 3)
    with pytest.raises(ValueError, match="render_mode='video' is not allowed"):
        referential_v0.env(render_mode="video")


def test_test_split_plays_held_out_objects():
    env = referential_v0.raw_env(split="test", n_attributes=2, n_values=6, holdout_fraction=0.25, n_candidates=3)
    env.reset(seed=0)
    held_out = {tuple(a) for a in env.game.pool("test").attributes.tolist()}
    target = tuple(env.current.batch().target_attributes[0].tolist())
    assert target in held_out
    with pytest.raises(ValueError, match="objects='shapes' is not allowed"):
        referential_v0.env(objects="shapes")
