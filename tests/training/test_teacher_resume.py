"""Resuming the teacher trainer: an interrupted run ends exactly like an uninterrupted one."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from commchannels.config import config_to_dict
from commchannels.registry import REGISTRY
from commchannels.run_folder import RunOptions, replace_run
from commchannels.runs import load_checkpoint, read_metrics
from commchannels.training.protocol import Interrupted, run_trainer
from commchannels.training.teacher import Config, TeacherTrainer, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny(cache: str, run_dir: str, speaks: bool = False, **overrides) -> Config:
    env = {**REGISTRY["teaching_v0"].debug_kwargs, "cache_dir": cache, "target_accuracy": 0.8}
    if speaks:
        env.update(student_speaks=True, report_len=2, report_vocab=4)
    run = overrides.pop("run", {})
    return Config(env=env, **{"n_envs": 4, "iterations": 6, "eval_seeds": 2, "eval_students": 2, **overrides},
                  run=RunOptions(run_dir=run_dir, progress=False, tensorboard=False, **run))


class StopAt(TeacherTrainer):
    """A teacher trainer that sends itself SIGTERM during iteration ``stop_at``."""

    stop_at = 0

    def step(self, step: int):
        if step == self.stop_at:
            os.kill(os.getpid(), signal.SIGTERM)
        return super().step(step)


def same_teachers(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize(("speaks", "memory"), [(False, "gru"), (True, "gru"), (False, "none")],
                         ids=["passive", "speaking", "passive-mlp"])
def test_resume_after_sigterm_matches_an_uninterrupted_run(cache, tmp_path, monkeypatch, speaks, memory):
    reference = train(tiny(cache, str(tmp_path / "reference"), speaks, memory=memory))
    cfg = tiny(cache, str(tmp_path / "run"), speaks, memory=memory)
    monkeypatch.setattr(StopAt, "stop_at", 3)
    with pytest.raises(Interrupted, match="interrupted by SIGTERM after step 3") as info:
        run_trainer(StopAt(cfg))
    saved = load_checkpoint(info.value.checkpoint)
    assert info.value.step == 3 and saved["step"] == 3
    # the teacher's weights, its GRU's among them, and its input statistics (a GRU's state lives
    # only within an episode, so there is none to save)
    teacher = saved["trainer"]["teacher"]
    assert ("cell.weight_hh" in teacher) == (memory == "gru") and teacher["norm.count"] > 0
    assert not (tmp_path / "run" / "final.json").exists()
    torch.manual_seed(12345)  # whatever the process did in between, the checkpoint's RNG states rule
    resumed = train(replace_run(cfg, resume=True))
    assert resumed.history == reference.history and resumed.final == reference.final
    assert same_teachers(resumed.extras["teacher"], reference.extras["teacher"])
    if speaks:
        assert same_teachers(resumed.extras["speaker"], reference.extras["speaker"])
    assert read_metrics(tmp_path / "run" / "metrics.jsonl") == reference.history


def test_resume_may_grow_the_budget_but_not_change_the_training(cache, tmp_path):
    reference = train(tiny(cache, str(tmp_path / "reference"), iterations=6))
    short = tiny(cache, str(tmp_path / "run"), iterations=3)
    train(short)
    with pytest.raises(ValueError, match=r"options differ from the saved run: \['lr'\]"):
        train(replace_run(tiny(cache, str(tmp_path / "run"), iterations=6, lr=0.1), resume=True))
    with pytest.raises(ValueError, match=r"options differ from the saved run: \['memory'\]"):
        train(replace_run(tiny(cache, str(tmp_path / "run"), iterations=6, memory="none"), resume=True))
    with pytest.raises(ValueError, match=r"options differ from the saved run: \['observe'\]"):
        train(replace_run(tiny(cache, str(tmp_path / "run"), iterations=6, observe="progress"), resume=True))
    with pytest.raises(ValueError, match=r"options differ from the saved run: \['env'\]"):
        changed = dataclasses.replace(short, env=dataclasses.replace(short.env, horizon=3), iterations=6)
        train(replace_run(changed, resume=True))
    # the evaluation's options may change: they are read only after the last checkpoint
    longer = train(replace_run(tiny(cache, str(tmp_path / "run"), iterations=6, eval_seeds=3, eval_split="train"),
                               resume=True))
    assert longer.history == reference.history
    assert longer.extras["teacher"] is not None and same_teachers(longer.extras["teacher"],
                                                                  reference.extras["teacher"])


def test_a_second_run_into_the_same_folder_is_refused(cache, tmp_path):
    cfg = tiny(cache, str(tmp_path / "run"), iterations=2)
    train(cfg)
    with pytest.raises(ValueError, match="already holds a run"):
        train(cfg)


KILLED_RUN = """
import json
import sys
import time

import torch
from commchannels.config import config_from_dict
from commchannels.training import teacher

torch.set_num_threads(1)
step = teacher.TeacherTrainer.step
def slow_step(self, n):  # slow enough for the test to kill it mid-run; the results are unchanged
    time.sleep(0.2)
    return step(self, n)
teacher.TeacherTrainer.step = slow_step
teacher.train(config_from_dict(teacher.Config, json.loads(sys.argv[1])))
"""


@pytest.mark.slow
def test_resume_after_sigkill_matches_an_uninterrupted_run(cache, tmp_path):
    cfg = tiny(cache, str(tmp_path / "run"), iterations=12, run={"checkpoint_every": 2})
    child = subprocess.Popen([sys.executable, "-c", KILLED_RUN, json.dumps(config_to_dict(cfg))])
    checkpoint = tmp_path / "run" / "checkpoints" / "latest.pt"
    try:
        deadline = time.monotonic() + 120
        while not checkpoint.exists():
            assert child.poll() is None, "the run ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint after 120 s"
            time.sleep(0.02)
        time.sleep(0.3)  # a metrics row or so past the checkpoint: resume must drop it
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait()
    assert child.returncode == -signal.SIGKILL
    killed_at = load_checkpoint(checkpoint)["step"]
    assert 2 <= killed_at < cfg.iterations and not (tmp_path / "run" / "final.json").exists()

    resumed = train(replace_run(cfg, resume=True))  # the killed process's lock went with it
    reference = train(tiny(cache, str(tmp_path / "reference"), iterations=12))
    assert resumed.history == reference.history and resumed.final == reference.final
    assert same_teachers(resumed.extras["teacher"], reference.extras["teacher"])
    assert read_metrics(tmp_path / "run" / "metrics.jsonl") == reference.history
