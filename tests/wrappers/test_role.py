"""The role adapter: episodes seen from one role, partners, rewards, flattening, errors.
(Gymnasium's and SB3's checkers run on every registered role in tests/envs/test_registry_generic.py.)"""

import gymnasium
import numpy as np
import pytest

from commchannels import make
from commchannels.wrappers import RandomPolicy, RoleEnv

GAME = {"n_attributes": 2, "n_values": 4, "n_candidates": 3, "vocab_size": 5, "max_len": 3}


def test_sender_steps_once_per_token_and_gets_the_final_reward():
    target_picker = {}

    def receiver(obs):  # an oracle partner: always right
        return target_picker["env"].env.unwrapped.current.batch().target_position[0].item()

    env = RoleEnv(make("referential_v0", **GAME), "sender", partners={"receiver": receiver})
    target_picker["env"] = env
    obs, _ = env.reset(seed=0)
    assert obs["message"].tolist() == [0, 0, 0]
    obs, reward, terminated, truncated, _ = env.step(2)
    assert (reward, terminated, truncated) == (0.0, False, False)
    assert obs["message"].tolist() == [3, 0, 0]
    _, reward, terminated, _, info = env.step(0)  # EOS: the receiver acts, the episode ends
    assert (reward, terminated, info["correct"], info["message"]) == (1.0, True, 1.0, [2, 0])
    with pytest.raises(RuntimeError, match="after the episode ended"):
        env.step(1)


def test_receiver_sees_the_partner_message_and_steps_once():
    env = RoleEnv(make("referential_v0", **GAME), "receiver", partners={"sender": lambda obs: 4})
    obs, _ = env.reset(seed=1)
    assert obs["message"].tolist() == [5, 5, 5]  # three 4s (shifted by one), no EOS
    target = env.env.unwrapped.current.batch().target_position[0].item()
    _, reward, terminated, _, info = env.step(target)
    assert (reward, terminated, info["message"]) == (1.0, True, [4, 4, 4])


def test_length_cost_reaches_the_sender_not_the_receiver():
    base = make("referential_v0", length_cost=0.1, **GAME)
    sender = RoleEnv(base, "sender", partners={"receiver": lambda obs: 0})
    sender.reset(seed=2)
    total = sum(sender.step(3)[1] for _ in range(3))
    assert total == pytest.approx(base.unwrapped.current.last_rewards["correct"] - 0.3)


def test_flatten_gives_float32_vectors_in_the_space():
    env = RoleEnv(make("referential_v0", **GAME), "receiver", flatten=True)
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.float32 and obs.shape == env.observation_space.shape
    assert env.observation_space.contains(obs)


def test_policy_from_a_model_transforms_observations():
    class Model:  # SB3's predict signature
        def predict(self, obs, deterministic=True):
            assert obs.ndim == 1 and deterministic
            return np.int64(1), None

    sender_env = RoleEnv(make("referential_v0", **GAME), "sender", flatten=True)
    receiver_env = RoleEnv(make("referential_v0", **GAME), "receiver")
    receiver_env.set_partner("sender", sender_env.policy(Model()))
    obs, _ = receiver_env.reset(seed=0)
    assert obs["message"].tolist() == [2, 2, 2]


def test_random_partners_follow_the_reset_seed():
    def messages(seed):
        env = RoleEnv(make("referential_v0", **GAME), "receiver")
        return [env.reset(seed=seed)[0]["message"].tolist()] + [env.reset()[0]["message"].tolist() for _ in range(5)]

    assert messages(3) == messages(3)
    assert messages(3) != messages(4)


def test_random_policy_respects_action_masks():
    policy = RandomPolicy(gymnasium.spaces.Discrete(4), seed=0)
    mask = np.array([0, 0, 1, 0], dtype=np.int8)
    assert {int(policy({"action_mask": mask})) for _ in range(20)} == {2}


def test_bad_roles_and_partners_are_rejected():
    with pytest.raises(ValueError, match=r"role='spy' is not an agent"):
        RoleEnv(make("referential_v0", **GAME), "spy")
    with pytest.raises(ValueError, match=r"partners for \['sender'\] are not allowed"):
        RoleEnv(make("referential_v0", **GAME), "sender", partners={"sender": lambda obs: 0})
    env = RoleEnv(make("referential_v0", **GAME), "sender")
    with pytest.raises(RuntimeError, match="before reset"):
        env.step(1)
    with pytest.raises(ValueError, match="agent='teacher' is not a partner"):
        env.set_partner("teacher", lambda obs: 0)


def test_gymnasium_ids_pass_arguments_through():
    env = gymnasium.make("commchannels/Referential-sender-v0", n_candidates=4, vocab_size=6, max_len=2)
    assert env.action_space == gymnasium.spaces.Discrete(6)
    assert env.unwrapped.env.unwrapped.game.n_candidates == 4
    env = gymnasium.make("commchannels/ReferentialDigits-receiver-v0", debug=True, render_mode="rgb_array")
    env.reset(seed=0)
    assert env.render().ndim == 3
