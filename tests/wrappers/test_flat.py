"""flatten=True: Box observations padded to one shape with an agent indicator, one Discrete
action space, so SuperSuit's wrappers and parameter-sharing learners work (issue #10)."""

import numpy as np
import pytest
from pettingzoo.test import api_test, parallel_api_test

from commchannels import REGISTRY, make
from commchannels.envs import referential_v0, teaching_v0

GAME = {"n_attributes": 2, "n_values": 4, "n_candidates": 3, "vocab_size": 5, "max_len": 2}
ss = pytest.importorskip("supersuit", reason="SuperSuit is in the 'rl' extra: pip install -e '.[rl]'")


def test_flat_layout_pads_indicates_and_numbers_actions():
    env = referential_v0.parallel_env(flatten=True, **GAME)
    obs, infos = env.reset(seed=0)
    raw = env.unwrapped.current
    assert obs["sender"].shape == obs["receiver"].shape == env.observation_space("sender").shape
    assert obs["sender"][-2:].tolist() == [1.0, 0.0] and obs["receiver"][-2:].tolist() == [0.0, 1.0]
    assert env.action_space("sender").n == env.action_space("receiver").n == 5
    assert infos["receiver"]["action_mask"].tolist() == [1, 1, 1, 0, 0] and infos["sender"]["is_turn"]
    env.step({"sender": 2, "receiver": 4})
    env.step({"sender": 1, "receiver": 0})
    assert raw.tokens == [2, 1]
    _, rewards, *_ = env.step({"sender": 0, "receiver": 4})  # a padded action acts as action 0
    target = int(raw.batch().target_position[0])
    assert rewards["receiver"] == float(target == 0)
    with pytest.raises(ValueError, match="out of range"):
        env.reset(seed=0)
        env.step({"sender": 5, "receiver": 0})


def test_multidiscrete_actions_are_numbered_in_mixed_radix():
    env = referential_v0.env(flatten=True, mode="reconstruction", **GAME)  # receiver: MultiDiscrete([4, 4])
    env.reset(seed=0)
    assert env.action_space("receiver").n == 16
    env.step(0)  # EOS
    target = env.unwrapped.current.batch().target_attributes[0].tolist()
    env.step(target[0] * 4 + target[1])
    assert env.rewards["receiver"] == 1.0


def test_teaching_with_a_speaking_student_flattens_both_agents():
    # the registry's debug options: the pre-trained teacher model is cached once for the session
    kwargs = {**REGISTRY["teaching_v0"].debug_kwargs, "student_speaks": True, "report_len": 2, "report_vocab": 3}
    parallel_api_test(teaching_v0.parallel_env(flatten=True, **kwargs), num_cycles=6)
    env = teaching_v0.env(flatten=True, **kwargs)
    env.reset(seed=0)
    assert env.observation_space("student") == env.observation_space("teacher")


@pytest.mark.parametrize("wrap", ["flatten_v0", "pad_observations_v0", "agent_indicator_v0"])
@pytest.mark.parametrize("env_id", ["referential_v0", "referential_digits_v0"])
def test_supersuit_wrappers_accept_the_flat_views(env_id, wrap):
    wrapper = getattr(ss, wrap)
    parallel_api_test(wrapper(make(env_id, parallel=True, debug=True, flatten=True)), num_cycles=20)
    api_test(wrapper(make(env_id, debug=True, flatten=True)), num_cycles=20)


def test_supersuit_black_death_plays_a_flat_episode():
    # SuperSuit 3.11's black_death_v3 reports an episode's end only when an agent is terminated
    # *and* truncated (``terminations & truncations``), so PettingZoo's parallel_api_test, which
    # waits for it, cannot run through it; the episode itself plays (and ends) normally.
    inner = make("referential_v0", parallel=True, flatten=True, **GAME)
    env = ss.black_death_v3(inner)
    obs, _ = env.reset(seed=0)
    for _ in range(GAME["max_len"] + 1):
        assert all(env.observation_space(a).contains(obs[a]) for a in env.agents)
        obs, rewards, *_ = env.step({a: 1 for a in env.agents})  # no EOS: max_len tokens, then the guess
    assert inner.agents == [] and set(rewards) == {"sender", "receiver"}


def test_supersuit_vector_env_stacks_both_roles():
    par = make("referential_v0", parallel=True, flatten=True, **GAME)
    envs = ss.concat_vec_envs_v1(ss.pettingzoo_env_to_vec_env_v1(par), 3, num_cpus=0, base_class="gymnasium")
    obs, infos = envs.reset(seed=0)
    assert obs.shape == (6, par.observation_space("sender").shape[0]) and len(infos) == 6
    for _ in range(GAME["max_len"] + 1):
        obs, reward, terminated, truncated, infos = envs.step(np.ones(6, dtype=np.int64))  # no EOS
    assert terminated.all() and set(np.unique(reward)) <= {0.0, 1.0}
    envs.close()
