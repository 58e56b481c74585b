"""PettingZoo, Gymnasium and SB3 views of the teaching environment (the passive-student
default is also covered by tests/envs/test_registry_generic.py through the registry)."""

from __future__ import annotations

import copy

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from gymnasium.utils.env_checker import data_equivalence
from pettingzoo.test import api_test, parallel_api_test, seed_test
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import commchannels
from commchannels.envs import teaching_v0
from commchannels.envs.teaching.gym_env import TeachingGymEnv

SMALL = {"hidden": (8,), "horizon": 3, "updates_per_step": 2, "batch_size": 8, "max_val": 60, "n_probe": 3,
         "teacher_hidden": (16,), "teacher_epochs": 2, "target_accuracy": 0.5}
SPEAKS = {**SMALL, "student_speaks": True, "report_len": 2, "report_vocab": 3}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    cache = str(tmp_path_factory.mktemp("teacher_cache"))
    return {"passive": {**SMALL, "cache_dir": cache}, "speaks": {**SPEAKS, "cache_dir": cache}}


@pytest.mark.parametrize("mode", ["passive", "speaks"])
def test_pettingzoo_checkers(small, mode):
    kwargs = small[mode]
    api_test(teaching_v0.env(**kwargs), num_cycles=30)
    parallel_api_test(teaching_v0.parallel_env(**kwargs), num_cycles=30)
    seed_test(lambda: teaching_v0.env(**kwargs), num_cycles=10)


def test_agents_and_spaces(small):
    passive = teaching_v0.env(**small["passive"])
    assert passive.possible_agents == ["teacher"]
    assert passive.action_space("teacher").nvec.tolist() == [1 + 10 + 3, 5, 2]
    assert passive.observation_space("teacher").shape == (5 + 10 + 2 * 3 * 10,)
    speaks = teaching_v0.env(**small["speaks"])
    assert speaks.possible_agents == ["student", "teacher"]
    assert speaks.action_space("student").nvec.tolist() == [3, 3]
    assert speaks.observation_space("teacher").shape == (1 + 2 * 3,)
    assert speaks.observation_space("teacher") is speaks.observation_space("teacher")


def test_aec_turn_order_with_a_speaking_student(small):
    env = teaching_v0.env(**small["speaks"])
    env.reset(seed=0)
    assert env.agent_selection == "student"
    env.step(np.array([2, 0]))
    assert env.agent_selection == "teacher"
    assert env.observe("teacher")[1:].tolist() == [0, 0, 1, 1, 0, 0]
    assert env.rewards == {"student": 0.0, "teacher": 0.0}
    env.step(np.array([0, 1, 0]))
    assert env.agent_selection == "student"
    reward = env.rewards["teacher"]
    assert env.rewards == {"student": reward, "teacher": reward}
    assert set(env.infos["student"]) >= {"accuracy", "diverged", "sgd_steps"}
    with pytest.raises(ValueError, match="report"):
        env.step(np.array([5, 0]))


def test_parallel_alternates_report_and_directive(small):
    env = teaching_v0.parallel_env(**small["speaks"])
    _, infos = env.reset(seed=0)
    assert infos["student"]["is_turn"] and not infos["teacher"]["is_turn"]
    with pytest.raises(ValueError, match="it is the student's turn"):
        env.step({"teacher": np.array([0, 0, 0])})
    _, rewards, *_, infos = env.step({"student": np.array([1, 1]), "teacher": np.array([0, 0, 0])})
    assert rewards == {"student": 0.0, "teacher": 0.0} and infos["teacher"]["is_turn"]
    assert not infos["student"]["is_turn"] and infos["student"]["sgd_steps"] == 0  # same keys every step
    _, rewards, *_, infos = env.step({"student": np.array([0, 0]), "teacher": np.array([0, 2, 1])})
    assert rewards["student"] == rewards["teacher"] == -1.0 and infos["teacher"]["sgd_steps"] == 2


def test_speaking_rollouts_are_deterministic(small, scramble_global_rngs):
    traces = []
    for global_seed in (3, 4):
        scramble_global_rngs(global_seed)
        env = teaching_v0.parallel_env(**small["speaks"])
        spaces = {a: copy.deepcopy(env.action_space(a)) for a in env.possible_agents}
        for i, space in enumerate(spaces.values()):
            space.seed(i)
        trace = [env.reset(seed=9)]
        for _ in range(12):
            if not env.agents:
                trace.append(env.reset())
            trace.append(env.step({a: spaces[a].sample() for a in env.agents}))
        traces.append(copy.deepcopy(trace))
    assert data_equivalence(traces[0], traces[1])


def test_divergence_is_reported_in_infos(small):
    env = teaching_v0.env(**{**small["passive"], "lr_scales": (1.0, 1e30)})
    env.reset(seed=0)
    env.step(np.array([0, 1, 0]))
    assert env.infos["teacher"]["diverged"] is True and env.terminations["teacher"]
    assert env.rewards["teacher"] == -3.0  # -horizon
    assert np.isfinite(env.observe("teacher")).all()


def test_gymnasium_view_passes_checkers_and_make(small):
    env = TeachingGymEnv(**small["passive"])
    gym_check_env(env, skip_render_check=True)
    sb3_check_env(env, warn=False)
    assert "commchannels/Teaching-v0" in gymnasium.registry and commchannels.REGISTRY["teaching_v0"]
    made = gymnasium.make("commchannels/Teaching-v0", render_mode="ansi", **small["passive"])
    obs, _ = made.reset(seed=1)
    obs, reward, terminated, truncated, info = made.step(made.action_space.sample())
    assert reward == -1.0 and "accuracy" in info and "val acc" in made.render()
    with pytest.raises(ValueError, match="student_speaks"):
        TeachingGymEnv(student_speaks=True)


def test_render_and_bad_arguments(small):
    env = teaching_v0.env(render_mode="ansi", **small["speaks"])
    env.reset(seed=0)
    env.step(np.array([1, 2]))
    env.step(np.array([4, 0, 1]))
    text = env.render()
    assert "report: 1 2" in text and "data=class 3" in text and "distil T=2.0" in text
    with pytest.raises(ValueError, match="render_mode='human' is not allowed"):
        teaching_v0.env(render_mode="human")
    with pytest.raises(ValueError, match="horizon=0 is out of range"):
        teaching_v0.parallel_env(horizon=0)
