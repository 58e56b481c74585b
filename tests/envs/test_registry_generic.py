"""Generic tests of every registered environment (Gymnasium's ``tests/envs/test_envs.py`` idea).

Everything here is parametrised over ``commchannels.REGISTRY`` (with each spec's small
``debug_kwargs``), so registering an environment enrols it: PettingZoo's checkers, a
full-rollout determinism test under scrambled global RNGs (PettingZoo 1.27's
``parallel_seed_test`` compares only the first step), pickling after reset and mid-episode,
text rendering, bad arguments (and integer options given as floats, strings or bools), the
PettingZoo / Gymnasium registries, and Gymnasium's and SB3's checkers on every role
(``EnvSpec.roles``) through the role adapter.
Games defined outside the package are enrolled by importing them (``EXTRA_MODULES``).
"""

from __future__ import annotations

import copy
import pickle
import re
from pathlib import Path

import gymnasium
import numpy as np
import pettingzoo
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from gymnasium.utils.env_checker import data_equivalence
from pettingzoo.test import api_test, parallel_api_test, seed_test
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from commchannels import REGISTRY, make
from commchannels.registry import gym_id, load_env_module
from commchannels.wrappers import RandomPolicy, RoleEnv

ROOT = Path(__file__).resolve().parents[2]
EXTRA_MODULES = [ROOT / "examples" / "colour_game.py"]  # games that register themselves
for _path in EXTRA_MODULES:
    load_env_module(_path)

IDS = sorted(REGISTRY)
ROLES = [(i, role) for i in IDS for role in REGISTRY[i].roles]
BAD = [(i, name) for i in IDS for name in REGISTRY[i].bad_kwargs]
MAX_STEPS = 10_000  # a cap so that an env that never ends fails instead of hanging
# Integer options must not be floats, strings or bools (issue #8: n_candidates=3.5 became 3).
NOT_INTEGERS = {"half": lambda v: v + 0.5, "float": float, "string": str, "bool": lambda v: True}
INTEGER_OPTIONS = [(i, name, kind) for i in IDS for name, value in REGISTRY[i].debug_kwargs.items()
                   if type(value) is int for kind in NOT_INTEGERS]


def test_registry_is_not_empty():
    assert {"referential_v0", "colours_v0"} <= set(IDS)


# --------------------------------------------------------------------------- helpers
def random_policies(env, seed: int) -> dict[str, RandomPolicy]:
    return {a: RandomPolicy(env.action_space(a), seed=seed + i) for i, a in enumerate(env.possible_agents)}


def play_aec(env, policies, episodes: int, max_steps: int = MAX_STEPS) -> list:
    """Step ``env`` (resetting without a seed between episodes) and record everything every
    agent can see; stops after ``episodes`` finished episodes or ``max_steps`` steps."""
    trace: list = []
    for _ in range(max_steps):
        if not env.agents:
            episodes -= 1
            if episodes <= 0:
                break
            env.reset()
        agent = env.agent_selection
        obs, reward, term, trunc, info = env.last()
        env.step(None if term or trunc else policies[agent](obs))
        seen = {a: env.observe(a) for a in env.agents}
        trace.append(copy.deepcopy((agent, obs, reward, term, trunc, info, env.rewards,
                                    env.terminations, env.truncations, env.infos, seen)))
    return trace


def play_parallel(env, policies, episodes: int, obs=None, max_steps: int = MAX_STEPS) -> list:
    """The Parallel counterpart of :func:`play_aec` (``obs``: the current observations)."""
    trace: list = []
    for _ in range(max_steps):
        if not env.agents:
            episodes -= 1
            if episodes <= 0:
                break
            obs, infos = env.reset()
            trace.append(copy.deepcopy((obs, infos)))
        actions = {a: policies[a](obs[a]) for a in env.agents}
        obs, *rest = env.step(actions)
        trace.append(copy.deepcopy((actions, obs, *rest)))
    return trace


def assert_same(trace_a: list, trace_b: list) -> None:
    assert len(trace_a) == len(trace_b) > 0
    for step, (a, b) in enumerate(zip(trace_a, trace_b)):
        assert data_equivalence(a, b), f"the runs differ at step {step}:\n{a}\n{b}"


# --------------------------------------------------------------------------- PettingZoo
@pytest.mark.parametrize("env_id", IDS)
def test_pettingzoo_checkers(env_id):
    api_test(make(env_id, debug=True), num_cycles=50)
    parallel_api_test(make(env_id, parallel=True, debug=True), num_cycles=50)
    seed_test(lambda: make(env_id, debug=True), num_cycles=20)


@pytest.mark.parametrize("env_id", IDS)
def test_pettingzoo_registry_builds_it(env_id):
    if not hasattr(pettingzoo, "register"):
        pytest.skip("this PettingZoo has no registry (< 1.27)")
    debug = REGISTRY[env_id].debug_kwargs
    assert isinstance(pettingzoo.make("aec", f"commchannels/{env_id}", **debug), pettingzoo.AECEnv)
    assert isinstance(pettingzoo.make("parallel", f"commchannels/{env_id}", **debug), pettingzoo.ParallelEnv)


# --------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("parallel", [False, True], ids=["aec", "parallel"])
@pytest.mark.parametrize("env_id", IDS)
def test_full_rollouts_are_deterministic(env_id, parallel, scramble_global_rngs):
    traces = []
    for global_seed in (1, 12345):
        scramble_global_rngs(global_seed)  # the env must draw only from its own generator
        env = make(env_id, parallel=parallel, debug=True)
        policies = random_policies(env, seed=7)
        if parallel:
            obs, infos = env.reset(seed=42)
            traces.append([copy.deepcopy((obs, infos)), *play_parallel(env, policies, 5, obs)])
        else:
            env.reset(seed=42)
            traces.append(play_aec(env, policies, episodes=5))
    assert_same(*traces)


@pytest.mark.parametrize("mid_episode", [False, True], ids=["after_reset", "mid_episode"])
@pytest.mark.parametrize("parallel", [False, True], ids=["aec", "parallel"])
@pytest.mark.parametrize("env_id", IDS)
def test_pickle_round_trip(env_id, parallel, mid_episode):
    env = make(env_id, parallel=parallel, debug=True)
    policies = random_policies(env, seed=3)
    if parallel:
        obs, _ = env.reset(seed=5)
        if mid_episode:
            obs = env.step({a: policies[a](obs[a]) for a in env.agents})[0]
    else:
        env.reset(seed=5)
        if mid_episode:
            play_aec(env, policies, episodes=1, max_steps=1)
    clone, clone_policies = pickle.loads(pickle.dumps((env, policies)))
    if parallel:
        assert_same(play_parallel(env, policies, 3, obs), play_parallel(clone, clone_policies, 3, obs))
    else:
        assert_same(play_aec(env, policies, 3), play_aec(clone, clone_policies, 3))


# --------------------------------------------------------------------------- rendering, arguments
@pytest.mark.parametrize("parallel", [False, True], ids=["aec", "parallel"])
@pytest.mark.parametrize("env_id", IDS)
def test_text_rendering(env_id, parallel):
    env = make(env_id, parallel=parallel, debug=True, render_mode="ansi")
    assert "ansi" in env.metadata["render_modes"]
    env.reset(seed=0)
    text = env.render()
    assert isinstance(text, str) and text.strip()
    policies = random_policies(env, seed=0)
    if parallel:
        env.step({a: policies[a](env.observation_space(a).sample()) for a in env.agents})
    else:
        env.step(policies[env.agent_selection](env.observe(env.agent_selection)))
    text = env.render()
    assert isinstance(text, str) and text.strip()


@pytest.mark.parametrize(("env_id", "name"), BAD)
def test_bad_argument_is_rejected_by_name(env_id, name):
    value = REGISTRY[env_id].bad_kwargs[name]
    for parallel in (False, True):
        with pytest.raises((ValueError, TypeError), match=re.escape(name)):
            make(env_id, parallel=parallel, debug=True, **{name: value}).reset(seed=0)


@pytest.mark.parametrize(("env_id", "name", "kind"), INTEGER_OPTIONS)
def test_integer_argument_of_another_type_is_rejected_by_name(env_id, name, kind):
    value = NOT_INTEGERS[kind](REGISTRY[env_id].debug_kwargs[name])
    for parallel in (False, True):
        with pytest.raises(ValueError, match=re.escape(f"{name}={value!r}")):
            make(env_id, parallel=parallel, debug=True, **{name: value}).reset(seed=0)


@pytest.mark.parametrize("env_id", IDS)
def test_unknown_argument_is_rejected_by_name(env_id):
    for parallel in (False, True):
        with pytest.raises((ValueError, TypeError), match="no_such_option"):
            make(env_id, parallel=parallel, debug=True, no_such_option=1).reset(seed=0)


# --------------------------------------------------------------------------- roles (Gymnasium, SB3)
@pytest.mark.parametrize("flatten", [False, True], ids=["dict", "flat"])
@pytest.mark.parametrize(("env_id", "role"), ROLES)
def test_role_env_passes_gymnasium_and_sb3_checkers(env_id, role, flatten):
    env = gymnasium.make(gym_id(env_id, role), debug=True, flatten=flatten, disable_env_checker=True)
    assert isinstance(env.unwrapped, RoleEnv)
    gym_check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, warn=False)


@pytest.mark.parametrize(("env_id", "role"), ROLES)
def test_role_env_is_deterministic(env_id, role, scramble_global_rngs):
    traces = []
    for global_seed in (1, 999):
        scramble_global_rngs(global_seed)
        env = RoleEnv(make(env_id, debug=True), role)
        env.action_space.seed(11)
        trace, episodes = [env.reset(seed=4)], 0
        while episodes < 3 and len(trace) < MAX_STEPS:
            trace.append(step := env.step(env.action_space.sample()))
            if step[2] or step[3]:
                episodes += 1
                trace.append(env.reset())
        traces.append(copy.deepcopy(trace))
    assert_same(*traces)


# --------------------------------------------------------------------------- conventions (issue #10)
@pytest.mark.parametrize("flatten", [False, True], ids=["dict", "flat"])
@pytest.mark.parametrize("parallel", [False, True], ids=["aec", "parallel"])
@pytest.mark.parametrize("env_id", IDS)
def test_metadata_names_the_registered_id(env_id, parallel, flatten):
    env = make(env_id, parallel=parallel, debug=True, flatten=flatten)
    assert env.metadata["name"] == env_id  # referential_digits_v0 reported referential_v0
    assert env.metadata["render_fps"] > 0
    assert {"ansi", "rgb_array"} <= set(env.metadata["render_modes"])


@pytest.mark.parametrize("parallel", [False, True], ids=["aec", "parallel"])
@pytest.mark.parametrize("env_id", IDS)
def test_state_is_a_global_vector_in_the_state_space(env_id, parallel):
    env = make(env_id, parallel=parallel, debug=True)
    policies = random_policies(env, seed=0)
    states = []
    if parallel:
        obs, _ = env.reset(seed=0)
        states.append(env.state())
        while env.agents:
            obs = env.step({a: policies[a](obs[a]) for a in env.agents})[0]
            states.append(env.state())
    else:
        env.reset(seed=0)
        for agent in env.agent_iter():
            states.append(env.state())
            obs, _, term, trunc, _ = env.last()
            env.step(None if term or trunc else policies[agent](obs))
    for state in states:
        assert state.dtype == np.float32 and env.unwrapped.state_space.contains(state)
    assert any(not np.array_equal(states[0], s) for s in states[1:])  # it follows the game


@pytest.mark.parametrize("parallel", [False, True], ids=["aec", "parallel"])
@pytest.mark.parametrize("env_id", IDS)
def test_rgb_array_rendering(env_id, parallel):
    env = make(env_id, parallel=parallel, debug=True, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3 and frame.size


@pytest.mark.parametrize("env_id", IDS)
def test_flat_views_pass_pettingzoo_checkers(env_id):
    api_test(make(env_id, debug=True, flatten=True), num_cycles=10)
    parallel_api_test(make(env_id, parallel=True, debug=True, flatten=True), num_cycles=10)
    env = make(env_id, parallel=True, debug=True, flatten=True)
    shapes = {env.observation_space(a).shape for a in env.possible_agents}
    assert len(shapes) == 1 and len({env.action_space(a).n for a in env.possible_agents}) == 1


@pytest.mark.parametrize("env_id", IDS)
def test_flat_rollouts_are_deterministic(env_id, scramble_global_rngs):
    traces = []
    for global_seed in (1, 12345):
        scramble_global_rngs(global_seed)
        env = make(env_id, parallel=True, debug=True, flatten=True)
        policies = random_policies(env, seed=7)
        obs, infos = env.reset(seed=42)
        traces.append([copy.deepcopy((obs, infos)), *play_parallel(env, policies, 2, obs)])
    assert_same(*traces)


@pytest.mark.parametrize(("env_id", "role"), ROLES)
def test_sb3_make_vec_env_builds_every_role(env_id, role):
    """SB3's helper asks for render_mode="rgb_array" (the attribute games refused it, issue #10)."""
    from stable_baselines3.common.env_util import make_vec_env

    vec = make_vec_env(gym_id(env_id, role), n_envs=2, seed=0, env_kwargs={"debug": True})
    obs = vec.reset()
    vec.step(np.array([vec.action_space.sample() for _ in range(2)]))
    assert len(vec.get_images()) == 2 and vec.get_images()[0].ndim == 3
    assert (obs if not isinstance(obs, dict) else next(iter(obs.values()))).shape[0] == 2
    vec.close()


@pytest.mark.parametrize("env_id", IDS)
def test_torchrl_pettingzoo_wrapper_reads_both_views(env_id):
    """TorchRL turns infos into tensors: the Parallel view's ``turn`` (a string) broke it."""
    pytest.importorskip("torchrl", reason="TorchRL is an optional extra: pip install -e '.[torchrl]'")
    from torchrl.envs.libs.pettingzoo import PettingZooWrapper
    from torchrl.envs.utils import check_env_specs

    for parallel in (False, True):
        view = make(env_id, parallel=parallel, debug=True)
        env = PettingZooWrapper(view, use_mask=True, return_state=True, categorical_actions=True, seed=0)
        check_env_specs(env, seed=0)
        assert env.rollout(8)["next", "state"].shape[-1] == view.unwrapped.state_space.shape[0]
