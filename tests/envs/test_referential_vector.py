"""Batched vector envs of each referential role (issue #10): Gymnasium's vector API over the
batched core, determinism, equivalence with the one-game role env, and the SB3 VecEnv."""

import copy

import gymnasium
import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.utils.env_checker import data_equivalence

from commchannels import make
from commchannels.envs.referential import AttributeValueGame, BatchedReferentialEnv
from commchannels.envs.referential.vector import BatchFlattener, ReferentialVectorEnv
from commchannels.wrappers import RoleEnv
from commchannels.wrappers.sb3 import SB3VecEnv

GAME = {"n_attributes": 2, "n_values": 4, "n_candidates": 3, "vocab_size": 5, "max_len": 3}
IDS = {"sender": "commchannels/Referential-sender-v0", "receiver": "commchannels/Referential-receiver-v0"}


def sender_rule(objects, message):
    """A deterministic sender: token = (index of the first feature set + tokens sent) % 5."""
    return (int(np.argmax(objects.reshape(-1))) + int((message > 0).sum())) % 5


def receiver_rule(message, candidates):
    """A deterministic receiver: candidate (sum of the message) % 3."""
    return int(message.sum()) % 3


def batched(rule, keys):
    def act(obs):
        rows = zip(*(obs[k].numpy() for k in keys))
        return torch.tensor([rule(*row) for row in rows])
    return act


PARTNERS = {"sender": (sender_rule, ("objects", "message")), "receiver": (receiver_rule, ("message", "candidates"))}


@pytest.mark.parametrize("flatten", [False, True], ids=["dict", "flat"])
@pytest.mark.parametrize("role", ["sender", "receiver"])
def test_make_vec_gives_a_batched_vector_env(role, flatten):
    env = gymnasium.make_vec(IDS[role], num_envs=6, flatten=flatten, **GAME)
    assert isinstance(env.unwrapped, ReferentialVectorEnv) and env.num_envs == 6
    assert env.metadata["autoreset_mode"] == gymnasium.vector.AutoresetMode.SAME_STEP
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    env.action_space.seed(0)
    finished = 0
    for _ in range(20):
        obs, reward, terminated, truncated, infos = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs) and reward.dtype == np.float32 and not truncated.any()
        assert np.all(reward[~terminated] == 0)
        if terminated.any():
            assert infos["_final_obs"].tolist() == terminated.tolist()
            final = infos["final_obs"][np.flatnonzero(terminated)[0]]
            assert env.single_observation_space.contains(final)
            assert set(np.unique(infos["final_info"]["correct"][terminated])) <= {0.0, 1.0}
        finished += int(terminated.sum())
    assert finished >= (120 if role == "receiver" else 20)
    wrapped = gymnasium.wrappers.vector.RecordEpisodeStatistics(env)
    wrapped.reset(seed=1)
    wrapped.step(env.action_space.sample())


def test_flattener_matches_gymnasium_flatten():
    game = AttributeValueGame(**GAME)
    core = BatchedReferentialEnv(game, batch_size=5, seed=0)
    core.reset()
    core.send(torch.tensor([1, 0, 4, 2, 3]))
    space = make("referential_v0", **GAME).observation_space("sender")
    obs = core.observation("sender")
    flat = BatchFlattener(space)(obs).numpy()
    for i in range(5):
        expected = spaces.flatten(space, {k: v[i].numpy() for k, v in obs.items()})
        np.testing.assert_array_equal(flat[i], expected)


@pytest.mark.parametrize("role", ["sender", "receiver"])
def test_same_seed_same_games_whatever_the_global_rngs(role, scramble_global_rngs):
    traces = []
    for global_seed in (1, 2):
        scramble_global_rngs(global_seed)
        env = gymnasium.make_vec(IDS[role], num_envs=4, **GAME)
        env.action_space.seed(3)
        trace = [env.reset(seed=7)]
        for _ in range(10):
            trace.append(env.step(env.action_space.sample()))
        traces.append(copy.deepcopy(trace))
    assert data_equivalence(traces[0], traces[1])


@pytest.mark.parametrize("role", ["sender", "receiver"])
def test_one_game_vector_env_replays_the_role_env(role):
    """num_envs=1 with the same seed and deterministic partners: the same games, observations,
    rewards and episode ends as the one-game RoleEnv over the AEC view."""
    other = "receiver" if role == "sender" else "sender"
    rule, keys = PARTNERS[other]
    aec = make("referential_v0", **GAME)
    aec.unwrapped.current.source.chunk_size = 1  # one game per draw, as the core's reset draws
    single = RoleEnv(aec, role, partners={other: lambda obs: rule(*(obs[k] for k in keys))})
    vector = gymnasium.make_vec(IDS[role], num_envs=1, partner=batched(rule, keys), **GAME)
    obs_s, _ = single.reset(seed=5)
    obs_v, _ = vector.reset(seed=5)
    own_rule, own_keys = PARTNERS[role]
    episodes = 0
    while episodes < 25:
        assert data_equivalence(obs_s, {k: v[0] for k, v in obs_v.items()})
        action = own_rule(*(obs_s[k] for k in own_keys))
        obs_s, reward_s, term_s, _, info_s = single.step(action)
        obs_v, reward_v, term_v, _, info_v = vector.step(np.array([action]))
        assert (reward_s, term_s) == (float(reward_v[0]), bool(term_v[0]))
        if term_s:
            assert data_equivalence(obs_s, info_v["final_obs"][0])
            assert info_s["correct"] == info_v["final_info"]["correct"][0]
            obs_s, _ = single.reset()
            episodes += 1


def test_core_scores_and_redraws_only_finished_games():
    game = AttributeValueGame(**GAME)
    core = BatchedReferentialEnv(game, batch_size=3, seed=0)
    batch = core.reset()
    core.send(torch.tensor([0, 2, 0]))  # games 0 and 2 end with EOS
    done = ~core.speaking
    with pytest.raises(ValueError, match="still being sent"):
        core.guess(torch.zeros(3, dtype=torch.long))
    rewards = core.guess(batch.target_position, games=done)
    assert rewards["correct"].tolist() == [1.0, 0.0, 1.0]
    kept = batch.candidate_ids[1].clone()
    core.reset_games(done)
    assert core.speaking.tolist() == [True, True, True] and core.lengths.tolist() == [0, 1, 0]
    assert torch.equal(core.batch.candidate_ids[1], kept) and torch.equal(batch.candidate_ids[1], kept)
    assert core.observation("sender")["message"].tolist()[1][0] == 3


def test_sb3_vec_env_collects_batches_for_ppo():
    from stable_baselines3 import PPO

    venv = SB3VecEnv(gymnasium.make_vec(IDS["receiver"], num_envs=16, flatten=True, **GAME))
    venv.seed(3)
    first = venv.reset()
    venv.seed(3)
    assert np.array_equal(venv.reset(), first)  # seed() then reset() reseeds
    obs, reward, done, infos = venv.step(np.zeros(16, dtype=np.int64))
    assert done.all() and infos[0]["terminal_observation"].shape == obs.shape[1:] and "correct" in infos[0]
    model = PPO("MlpPolicy", venv, n_steps=4, batch_size=32, n_epochs=1, seed=0)
    model.learn(64)
    assert model.num_timesteps >= 64
    sender = SB3VecEnv(gymnasium.make_vec(IDS["sender"], num_envs=8, **GAME))  # Dict observations
    sender.reset()
    for _ in range(GAME["max_len"]):  # no EOS: every message ends after max_len tokens
        obs, reward, done, infos = sender.step(np.ones(8, dtype=np.int64))
    assert done.all() and set(infos[0]["terminal_observation"]) == {"message", "objects"}


def test_vector_env_argument_errors():
    with pytest.raises(ValueError, match="render_mode='rgb_array' is not allowed"):
        gymnasium.make_vec(IDS["sender"], num_envs=2, render_mode="rgb_array")
    with pytest.raises(ValueError, match="role='spy'"):
        ReferentialVectorEnv(AttributeValueGame(**GAME), "spy", 2)
    env = gymnasium.make_vec(IDS["receiver"], num_envs=2, **GAME)
    with pytest.raises(ValueError, match="pass one int"):
        env.reset(seed=[1, 2])
    with pytest.raises(ValueError, match="before reset"):
        env.step(np.zeros(2, dtype=np.int64))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="candidate index"):
        env.step(np.array([0, 7]))
    teacher = gymnasium.make_vec("commchannels/Teaching-teacher-v0", num_envs=1, debug=True)  # no batched
    assert isinstance(teacher, gymnasium.vector.SyncVectorEnv)  # entry point: Gymnasium's sync default
    teacher.close()


def test_docstring_examples_run():
    import doctest

    import commchannels.wrappers.role
    import commchannels.wrappers.sb3

    for module in (commchannels.wrappers.sb3, commchannels.wrappers.role):
        assert doctest.testmod(module).failed == 0
