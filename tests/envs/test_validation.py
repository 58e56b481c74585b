"""What the environments accept (issue #8): actions are integers and nothing else, in every
view; constructor options are rejected by name when they are not of their type; sizes are
bounded and checked against memory before anything is allocated; the teacher-model cache never
touches the global random state."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import commchannels.config
from commchannels import make
from commchannels.data import load_dataset
from commchannels.envs import referential_v0, teaching_v0
from commchannels.envs.actions import action_array, integer_tensor
from commchannels.envs.referential import AttributeValueGame, BatchedReferentialEnv, DigitsGame
from commchannels.envs.teaching import TeachingCore, TeachingSettings
from commchannels.envs.teaching.gym_env import TeachingGymEnv
from commchannels.envs.teaching.pretrained import pretrained_teacher
from commchannels.wrappers import RoleEnv

GAME = {"n_attributes": 2, "n_values": 4, "n_candidates": 3, "vocab_size": 5, "max_len": 2}
pytestmark = pytest.mark.usefixtures("one_torch_thread")

TEACHING = {"hidden": (8,), "horizon": 3, "updates_per_step": 1, "batch_size": 8, "max_val": 60, "n_probe": 3,
            "teacher_hidden": (16,), "teacher_epochs": 2, "target_accuracy": None}

# what the user reported (2.7 became token 2, True became 1, ...) and its neighbours
NOT_ONE_INTEGER = [2.7, 2.0, True, False, np.float32(1.9), np.float64(1.0), float("nan"), np.float32("nan"),
                   "2", None, np.bool_(True), np.array(1.0), np.array(True), [1], (1,), np.array([1]),
                   torch.tensor(1.0)]
ONE_INTEGER = [1, np.int64(1), np.int32(1), np.uint8(1), np.array(1), np.array(1, dtype=np.int16), torch.tensor(1)]
NOT_A_DIRECTIVE = [[1.7, 0.2, 0.9], (1, 0, 0.0), [1, 0, True], np.array([1.0, 0.0, 0.0]),
                   np.array([np.nan, 0, 0]), [1, 0], [1, 0, 0, 0], np.array([[1, 0, 0]]), 1, "100", None,
                   np.array([1, 0, 0], dtype=bool), torch.tensor([1.0, 0.0, 0.0])]
A_DIRECTIVE = [[1, 0, 0], (1, 0, 0), np.array([1, 0, 0]), np.array([1, 0, 0], dtype=np.int32),
               [np.int64(1), np.int8(0), 0], torch.tensor([1, 0, 0])]


def shown(value) -> str:
    """How the error message shows ``value`` (NaN reads ``nan``)."""
    return repr(value.tolist() if isinstance(value, (np.ndarray, torch.Tensor)) else value)


def rejects(agent: str, value):
    return pytest.raises(ValueError, match=rf"{agent} action {re.escape(shown(value))} is not allowed; expected")


@pytest.fixture
def teaching(cache):
    return {**TEACHING, "cache_dir": cache}


# --------------------------------------------------------------------------- the shared helper
def test_nan_is_reported_as_nan_not_as_the_smallest_int64():
    from gymnasium import spaces

    for action in (float("nan"), np.float64("nan"), [np.nan, 0.0, 0.0]):
        space = spaces.Discrete(4) if np.ndim(action) == 0 else spaces.MultiDiscrete([3, 3, 3])
        with pytest.raises(ValueError, match="nan") as err:
            action_array("teacher", action, space)
        assert "-9223372036854775808" not in str(err.value)


def test_integers_too_large_for_int64_are_out_of_range():
    from gymnasium import spaces

    for action in (2**70, -(2**70), np.uint64(2**63), np.array(2**63, dtype=np.uint64)):
        with pytest.raises(ValueError, match="sender action .* is out of range"):
            action_array("sender", action, spaces.Discrete(5))


def test_batched_values_must_have_an_integer_dtype():
    assert integer_tensor("guesses", [[1, 2]]).dtype == torch.long
    assert integer_tensor("guesses", np.array([3], dtype=np.uint8)).tolist() == [3]
    for bad in ([1.5], np.array([2.0]), torch.tensor([2.0]), torch.tensor([True]), [["a"]], [[1], [1, 2]]):
        with pytest.raises(ValueError, match="guesses"):
            integer_tensor("guesses", bad)


# --------------------------------------------------------------------------- referential views
@pytest.mark.parametrize("action", NOT_ONE_INTEGER, ids=repr)
def test_referential_aec_rejects_non_integer_tokens_and_guesses(action):
    env = referential_v0.env(**GAME)
    env.reset(seed=0)
    with rejects("sender", action):
        env.step(action)
    assert env.agent_selection == "sender"  # nothing happened: the sender can act again
    env.step(0)
    with rejects("receiver", action):
        env.step(action)
    env.step(0)
    assert all(env.terminations.values())


@pytest.mark.parametrize("action", NOT_ONE_INTEGER, ids=repr)
def test_referential_parallel_rejects_non_integer_actions(action):
    env = referential_v0.parallel_env(**GAME)
    env.reset(seed=0)
    with rejects("sender", action):
        env.step({"sender": action, "receiver": 0})
    env.step({"sender": 0, "receiver": 0})
    with rejects("receiver", action):
        env.step({"sender": 0, "receiver": action})


@pytest.mark.parametrize("action", ONE_INTEGER, ids=repr)
def test_referential_views_accept_every_integer_form(action):
    aec, par = referential_v0.env(**GAME), referential_v0.parallel_env(**GAME)
    aec.reset(seed=0)
    par.reset(seed=0)
    aec.step(action)
    par.step({"sender": action, "receiver": 0})
    assert aec.observe("sender")["message"].tolist() == par.current.observe("sender")["message"].tolist() == [2, 0]
    aec.step(0)
    aec.step(action)  # the receiver's guess
    assert all(aec.terminations.values())


def test_reconstruction_guesses_are_integer_vectors():
    env = referential_v0.env(mode="reconstruction", **GAME)
    env.reset(seed=0)
    env.step(0)
    for bad in ([1.0, 2.0], [1, True], np.array([1.5, 0.0]), [1], [1, 2, 3], 3):
        with rejects("receiver", bad):
            env.step(bad)
    env.step((np.int64(1), 2))
    assert all(env.terminations.values())


def test_role_adapter_passes_the_check_through():
    env = RoleEnv(make("referential_v0", **GAME), "sender")
    env.reset(seed=0)
    with rejects("sender", 2.7):
        env.step(2.7)
    obs, *_ = env.step(np.int64(2))
    assert obs["message"].tolist() == [3, 0]


def test_referential_core_rejects_float_guesses():
    core = BatchedReferentialEnv(AttributeValueGame(**GAME), batch_size=2, seed=0)
    core.reset()
    core.send(torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="receiver actions .* dtype torch.float32; expected integers"):
        core.guess(torch.tensor([1.7, 0.2]))
    fresh = BatchedReferentialEnv(AttributeValueGame(**GAME), batch_size=2, seed=0)
    fresh.reset()
    with pytest.raises(ValueError, match="message tokens must be integers"):
        fresh.send(torch.tensor([1.0, 2.0]))
    assert core.guess(np.array([1, 0]))["correct"].shape == (2,)


# --------------------------------------------------------------------------- teaching views
@pytest.mark.parametrize("action", NOT_A_DIRECTIVE, ids=repr)
def test_teaching_views_reject_non_integer_directives(teaching, action):
    aec = teaching_v0.env(**teaching)
    par = teaching_v0.parallel_env(**teaching)
    gym = TeachingGymEnv(**teaching)
    for env in (aec, par, gym):
        env.reset(seed=0)
    with rejects("teacher", action):
        aec.step(action)
    with rejects("teacher", action):
        par.step({"teacher": action})
    with rejects("teacher", action):
        gym.step(action)
    assert int(aec.unwrapped.core.t[0]) == int(par.core.t[0]) == int(gym.core.t[0]) == 0  # nothing applied


@pytest.mark.parametrize("action", A_DIRECTIVE, ids=repr)
def test_teaching_views_accept_integer_directives(teaching, action):
    aec = teaching_v0.env(**teaching)
    aec.reset(seed=0)
    aec.step(action)
    gym = TeachingGymEnv(**teaching)
    gym.reset(seed=0)
    gym.step(action)
    assert int(aec.unwrapped.core.t[0]) == int(gym.core.t[0]) == 1
    assert aec.unwrapped.core.last_directive.tolist() == [[1, 0, 0]]


def test_student_reports_are_integer_vectors(teaching):
    kwargs = {**teaching, "student_speaks": True, "report_len": 2, "report_vocab": 3}
    aec, par = teaching_v0.env(**kwargs), teaching_v0.parallel_env(**kwargs)
    aec.reset(seed=0)
    par.reset(seed=0)
    for bad in ([1.0, 2.0], [1, True], np.array([np.nan, 1.0]), [1], "12"):
        with rejects("student", bad):
            aec.step(bad)
        with rejects("student", bad):
            par.step({"student": bad, "teacher": [0, 0, 0]})
    aec.step((1, np.int64(2)))
    par.step({"student": np.array([1, 2]), "teacher": [0.5, 0, 0]})  # the teacher's action is ignored here
    assert aec.unwrapped.core.message.tolist() == par.core.message.tolist() == [[1, 2]]


def test_teaching_core_rejects_float_directives_and_reports(teaching):
    core = TeachingCore(TeachingSettings(**teaching, student_speaks=True, report_len=2), n_envs=2, seed=0)
    core.reset()
    with pytest.raises(ValueError, match="directives .* dtype float64; expected integers"):
        core.step(np.array([[1.7, 0.2, 0.9], [0.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="directives .* dtype torch.float32"):
        core.step(torch.full((2, 3), float("nan")))
    with pytest.raises(ValueError, match="report .* dtype"):
        core.report(torch.ones(2, 2))
    with pytest.raises(ValueError, match=r"expected \(2, 2\) tokens"):
        core.report(torch.ones(2, 3, dtype=torch.long))
    core.report([[1, 0], [0, 1]])
    assert core.step([[1, 0, 0], [0, 1, 0]])["reward"].shape == (2,)


# --------------------------------------------------------------------------- constructor options
GAME_OPTIONS = ["n_candidates", "vocab_size", "max_len", "n_attributes", "n_values", "split_seed"]


@pytest.mark.parametrize("name", GAME_OPTIONS)
@pytest.mark.parametrize("value", [3.5, 3.0, "3", True, float("nan"), None], ids=repr)
def test_integer_game_options_reject_other_types_by_name(name, value):
    with pytest.raises(ValueError, match=rf"^{name}=.* is not an integer; expected an int"):
        AttributeValueGame(**{name: value})
    if name in ("n_candidates", "vocab_size", "max_len"):
        with pytest.raises(ValueError, match=rf"^{name}="):
            DigitsGame(**{name: value})


@pytest.mark.parametrize(("name", "value"), [
    ("length_cost", "0.1"), ("length_cost", float("nan")), ("length_cost", float("inf")), ("length_cost", True),
    ("holdout_fraction", "0.1"), ("holdout_fraction", float("nan")), ("sender_sees_candidates", 1),
    ("sender_sees_candidates", "yes"), ("mode", 1),
], ids=repr)
def test_other_game_options_reject_other_types_by_name(name, value):
    with pytest.raises(ValueError, match=rf"^{name}="):
        referential_v0.env(**{name: value})


def test_game_options_are_normalised():
    game = AttributeValueGame(n_candidates=np.int64(3), vocab_size=np.int32(7), split_seed=np.uint32(5),
                              length_cost=1, holdout_fraction=0, sender_sees_candidates=np.bool_(True))
    assert (type(game.n_candidates), type(game.vocab_size), type(game.split_seed)) == (int, int, int)
    assert type(game.length_cost) is float and type(game.holdout_fraction) is float
    assert game.sender_sees_candidates is True


@pytest.mark.parametrize(("name", "value", "allowed"), [
    ("split_seed", -1, "[0, 4294967295]"), ("split_seed", 2**32, "[0, 4294967295]"),
    ("vocab_size", 10**9, "[2, 1048576]"), ("max_len", 1_000_000, "[1, 1024]"),
    ("n_candidates", 2**17, "[2, 65536]"), ("n_attributes", 10**9, "[1, 22]"),
], ids=repr)
def test_sizes_are_bounded(name, value, allowed):
    with pytest.raises(ValueError, match=rf"^{name}={value} is out of range; expected a value in {re.escape(allowed)}"):
        AttributeValueGame(**{name: value})


def test_too_many_objects_fail_at_once(monkeypatch):
    with pytest.raises(ValueError, match="n_values\\*\\*n_attributes=16777216 objects is too many"):
        AttributeValueGame(n_attributes=3, n_values=256)
    with pytest.raises(ValueError, match="needs about .* GiB of memory"):  # 2**22 objects of 2**22 features
        AttributeValueGame(n_attributes=1, n_values=2**22)
    monkeypatch.setattr(commchannels.config, "physical_memory", lambda: 2**30)
    with pytest.raises(ValueError, match=r"n_attributes=2, n_values=2048 needs about \d+\.\d GiB of memory"):
        AttributeValueGame(n_attributes=2, n_values=2048)


def test_split_and_render_mode_are_still_checked():
    with pytest.raises(ValueError, match="split='validation' is not allowed"):
        referential_v0.env(split="validation")
    with pytest.raises(ValueError, match="render_mode='video' is not allowed"):
        referential_v0.parallel_env(render_mode="video")


# --------------------------------------------------------------------------- batch sizes and memory
def test_referential_batch_size_is_an_int_checked_against_memory(monkeypatch):
    game = DigitsGame()
    for bad, what in ((1e6, "is not an integer"), (True, "is not an integer"), (0, "is out of range"),
                      (2**24 + 1, "is out of range")):
        with pytest.raises(ValueError, match=f"batch_size={bad!r} {what}"):
            BatchedReferentialEnv(game, batch_size=bad)
    monkeypatch.setattr(commchannels.config, "physical_memory", lambda: 2**30)
    with pytest.raises(ValueError, match=r"a batch of 1000000 'digits' games needs about \d+\.\d GiB of memory"):
        BatchedReferentialEnv(game, batch_size=1_000_000)
    assert BatchedReferentialEnv(game, batch_size=1000).batch_size == 1000


def test_teaching_n_envs_is_an_int_checked_against_memory(teaching, monkeypatch):
    settings = TeachingSettings(**teaching)
    for bad, what in ((1e8, "is not an integer"), ("8", "is not an integer"), (0, "is out of range"),
                      (2**24 + 1, "is out of range")):
        with pytest.raises(ValueError, match=f"n_envs={bad!r} {what}"):
            TeachingCore(settings, n_envs=bad)
    monkeypatch.setattr(commchannels.config, "physical_memory", lambda: 2**30)
    with pytest.raises(ValueError, match=r"1000000 teaching environments need(s)? about \d+\.\d GiB of memory"):
        TeachingCore(settings, n_envs=1_000_000)
    assert TeachingCore(settings, n_envs=16).n_envs == 16


# --------------------------------------------------------------------------- teacher cache and the global RNG
@pytest.fixture
def restore_torch_rng():
    state = torch.get_rng_state()
    yield
    torch.set_rng_state(state)


def test_teacher_cache_paths_leave_the_global_rng_alone(tmp_path, restore_torch_rng):
    """No cache, a valid cache and a corrupt cache: the same model and the same global RNG
    state (a corrupt cache used to consume global draws and change seeded results)."""
    data = load_dataset("digits")
    path = tmp_path / "cache"
    results = []
    for corrupt in (False, False, True):  # build, load, rebuild
        if corrupt:
            (file,) = path.glob("teacher-digits-*.pt")
            file.write_bytes(b"not a checkpoint")
        torch.manual_seed(1234)
        before = torch.get_rng_state()
        if corrupt:
            with pytest.warns(UserWarning, match="corrupt"):
                model = pretrained_teacher(data, (8,), 1, cache_dir=path)
        else:
            model = pretrained_teacher(data, (8,), 1, cache_dir=path)
        assert torch.equal(torch.get_rng_state(), before)
        results.append((model.state_dict(), torch.rand(4)))
    for state, draws in results[1:]:
        assert torch.equal(draws, results[0][1])
        assert all(torch.equal(v, results[0][0][k]) for k, v in state.items())
