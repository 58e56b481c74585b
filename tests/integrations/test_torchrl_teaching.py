"""The native TorchRL env over the batched teaching core (issue #10). Optional: needs
``pip install -e '.[torchrl]'`` (in the dev set-up)."""

import pytest
import torch

pytest.importorskip("torchrl", reason="TorchRL is an optional extra: pip install -e '.[torchrl]'")

from torchrl.envs.utils import check_env_specs  # noqa: E402

from commchannels.envs.teaching import TeachingCore, TeachingSettings  # noqa: E402
from commchannels.integrations.torchrl_teaching import make_teaching_env  # noqa: E402

SMALL = {"horizon": 3, "updates_per_step": 2, "max_val": 60, "n_probe": 3, "teacher_hidden": (16,),
         "teacher_epochs": 2, "target_accuracy": None}
SPEAKING = {"student_speaks": True, "report_len": 2, "report_vocab": 4}

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.parametrize("kwargs", [{}, SPEAKING, {"students": "mlp-arch"}], ids=["passive", "speaking", "mlp-arch"])
def test_passes_torchrls_spec_check(cache, kwargs):
    env = make_teaching_env(batch_size=4, seed=0, cache_dir=cache, **SMALL, **kwargs)
    check_env_specs(env, seed=0)
    td = env.rollout(8, break_when_any_done=False)
    assert td.batch_size == torch.Size([4, 8])
    assert set(env.group_map) == ({"student", "teacher"} if kwargs is SPEAKING else {"teacher"})


def test_directive_steps_are_the_cores_own(cache):
    """A thin view: the same seed and directives give the core's rewards and statistics."""
    env = make_teaching_env(batch_size=3, seed=4, cache_dir=cache, **SMALL, students="mlp-arch")
    core = TeachingCore(TeachingSettings(**SMALL, students="mlp-arch", cache_dir=cache), n_envs=3, seed=4)
    td = env.reset()
    expected = core.reset()
    directives = torch.tensor([[0, 4, 0], [1, 2, 1], [2, 5, 0]])
    for _ in range(3):
        assert torch.equal(td["teacher", "observation"][:, 0], expected)
        td["teacher", "action"] = directives[:, None]
        td = env.step(td)["next"]
        out = core.step(directives)
        expected = core.teacher_observation()
        assert torch.equal(td["teacher", "reward"][:, 0, 0], out["reward"])
    assert td["done"].all()  # truncated at the horizon


def test_speaking_turns_alternate_and_reports_reach_the_teacher(cache):
    env = make_teaching_env(batch_size=2, seed=0, cache_dir=cache, **SMALL, **SPEAKING)
    td = env.reset()
    assert td["student", "mask"].all() and not td["teacher", "mask"].any()
    td["student", "action"] = torch.tensor([[[1, 3]], [[2, 0]]])
    td["teacher", "action"] = torch.zeros(2, 1, 3, dtype=torch.long)  # ignored: the student's turn
    td = env.step(td)["next"]
    assert td["teacher", "mask"].all() and int(env.core.t.sum()) == 0
    assert td["teacher", "reward"].abs().sum() == 0
    onehot = td["teacher", "observation"][0, 0, 1:].reshape(2, 4)
    assert onehot.argmax(-1).tolist() == [1, 3]
    td["teacher", "action"] = torch.tensor([[[0, 1, 0]], [[0, 1, 0]]])
    td = env.step(td)["next"]
    assert td["student", "mask"].all() and env.core.t.tolist() == [1, 1]
    assert td["teacher", "reward"][:, 0, 0].tolist() == [-1.0, -1.0] == td["student", "reward"][:, 0, 0].tolist()


def test_finished_environments_restart_alone(cache):
    settings = {**SMALL, "updates_per_step": 4, "horizon": 5, "target_accuracy": 0.3}
    env = make_teaching_env(batch_size=2, seed=0, cache_dir=cache, **settings)
    td = env.reset()
    # environment 0 takes the largest learning rate and reaches the target at once; 1 the smallest
    td["teacher", "action"] = torch.tensor([[[0, 4, 0]], [[0, 0, 0]]])
    stepped, td = env.step_and_maybe_reset(td)
    assert stepped["next", "done"][:, 0].tolist() == [True, False]
    assert stepped["next", "teacher", "reward"][:, 0, 0].tolist() == [-1.0, -1.0]
    assert env.core.t.tolist() == [0, 1]  # environment 0 restarted with a fresh student, 1 goes on
    assert td["teacher", "observation"][:, 0, 0].tolist() == pytest.approx([0.0, 0.2])  # progress: t / horizon


def test_seeded_rollouts_repeat(cache):
    def rollout():
        env = make_teaching_env(batch_size=3, cache_dir=cache, **SMALL, students="mlp-arch")
        env.set_seed(5)
        torch.manual_seed(0)  # the random policy of rollout() draws from torch's global generator
        return env.rollout(7, break_when_any_done=False)

    first, second = rollout(), rollout()
    assert (first == second).all()


@pytest.mark.parametrize("kwargs", [{}, SPEAKING], ids=["passive", "speaking"])
def test_a_torchrl_collector_gathers_whole_episodes(cache, kwargs):
    from torchrl.collectors import Collector
    from torchrl.envs.utils import RandomPolicy

    env = make_teaching_env(batch_size=4, seed=0, cache_dir=cache, **SMALL, **kwargs)
    collector = Collector(env, RandomPolicy(env.full_action_spec), frames_per_batch=4 * 8, total_frames=4 * 16)
    turns = 2 if kwargs else 1  # a speaking student's report step, then the directive
    batches = list(collector)
    collector.shutdown()
    assert [b.batch_size for b in batches] == [torch.Size([4, 8])] * 2
    # every episode ends after horizon directives (3 x turns steps) and restarts at once
    assert sum(int(b["next", "done"].sum()) for b in batches) == 4 * (16 // (SMALL["horizon"] * turns))
    for batch in batches:  # -1 per directive, nothing on report steps
        assert batch["next", "teacher", "reward"].sum() == -float(batch["teacher", "mask"].sum())
