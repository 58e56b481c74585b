"""The one-game fast path (numpy) and the batched core at B=1 play identical games (issue #10:
the AEC view runs at least as fast as PettingZoo's rps_v2 through the fast path)."""

import copy

import numpy as np
import pytest
from gymnasium.utils.env_checker import data_equivalence

from commchannels.envs import referential_v0
from commchannels.envs.referential import BatchedReferentialEnv
from commchannels.envs.referential.single import GameSource
from commchannels.wrappers import RandomPolicy

VARIANTS = {
    "attributes": {"n_attributes": 2, "n_values": 4, "n_candidates": 3, "vocab_size": 5, "max_len": 3},
    "digits": {"objects": "digits", "n_candidates": 4, "max_len": 2},
    "reconstruction": {"mode": "reconstruction", "n_attributes": 3, "n_values": 3, "max_len": 2},
    "length_cost": {"sender_sees_candidates": True, "max_len": 3, "length_cost": 0.1, "vocab_size": 3},
}


def aec_trace(fast: bool, kwargs: dict, steps: int = 400) -> list:
    env = referential_v0.env(fast=fast, render_mode="ansi", **kwargs)
    policies = {a: RandomPolicy(env.action_space(a), seed=i) for i, a in enumerate(env.possible_agents)}
    env.reset(seed=3)
    trace = []
    for step in range(steps):
        if not env.agents:
            env.reset(seed=11 if step == 200 else None)  # a reseed mid-stream too
        agent = env.agent_selection
        obs, reward, term, trunc, info = env.last()
        env.step(None if term or trunc else policies[agent](obs))
        trace.append(copy.deepcopy((agent, obs, reward, term, trunc, info, env.rewards, env.state(),
                                    env.render())))
    return trace


def parallel_trace(fast: bool, kwargs: dict, steps: int = 300) -> list:
    env = referential_v0.parallel_env(fast=fast, render_mode="ansi", **kwargs)
    policies = {a: RandomPolicy(env.action_space(a), seed=i) for i, a in enumerate(env.possible_agents)}
    obs, infos = env.reset(seed=5)
    trace = [copy.deepcopy((obs, infos))]
    for _ in range(steps):
        if not env.agents:
            obs, infos = env.reset()
        out = env.step({a: policies[a](obs[a]) for a in env.agents})
        obs = out[0]
        trace.append(copy.deepcopy((out, env.state(), env.render())))
    return trace


@pytest.mark.parametrize("variant", VARIANTS)
def test_fast_path_and_core_give_identical_aec_trajectories(variant):
    fast, core = aec_trace(True, VARIANTS[variant]), aec_trace(False, VARIANTS[variant])
    assert len(fast) == len(core)
    for step, (a, b) in enumerate(zip(fast, core)):
        assert data_equivalence(a, b), f"step {step}:\n{a}\n{b}"
    assert any(t[2] != 0 for t in fast)  # some games were won


@pytest.mark.parametrize("variant", VARIANTS)
def test_fast_path_and_core_give_identical_parallel_trajectories(variant):
    fast, core = parallel_trace(True, VARIANTS[variant]), parallel_trace(False, VARIANTS[variant])
    for step, (a, b) in enumerate(zip(fast, core)):
        assert data_equivalence(a, b), f"step {step}:\n{a}\n{b}"


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "core"])
def test_both_paths_raise_the_games_errors(fast):
    env = referential_v0.env(fast=fast, vocab_size=4, n_candidates=3, max_len=1)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"token 4 is out of range; expected 0 <= token < vocab_size=4"):
        env.step(4)
    env.step(1)
    with pytest.raises(ValueError, match=r"candidate index in \[0, 3\)"):
        env.step(7)


def test_games_come_in_chunks_from_the_envs_generator():
    game = referential_v0.raw_env(**VARIANTS["attributes"]).game
    source = GameSource(game, "train", chunk_size=4)
    source.reseed(9)
    ids = []
    for _ in range(8):
        index = source.next()
        ids.append(source.chunk.candidate_ids[index].tolist())
    core = BatchedReferentialEnv(game, batch_size=4, seed=9)  # the same draws, four at a time
    expected = core.reset().candidate_ids.tolist() + core.reset().candidate_ids.tolist()
    assert ids == expected


def test_fast_path_observations_are_copies():
    env = referential_v0.raw_env(**VARIANTS["attributes"])
    env.reset(seed=0)
    before = env.observe("receiver")
    before["candidates"][:] = 9.0
    before["message"][:] = 9
    env.step(2)
    after = env.observe("receiver")
    assert after["message"].tolist() == [3, 0, 0] and np.all(after["candidates"] <= 1.0)
