"""The trainer protocol: checkpoints, SIGINT/SIGTERM, resume to identical metrics, SIGKILL."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from commchannels.config import Options, option
from commchannels.run_folder import RunOptions, replace_run
from commchannels.runs import load_checkpoint
from commchannels.training.protocol import Interrupted, Trainer, run_trainer


@dataclass(frozen=True)
class ToyConfig(Options):
    """A noisy random walk 'trained' for ``steps`` steps."""

    steps: int = option(10, "steps", low=1)
    interrupt_at: int = option(0, "send SIGTERM to this process at this step (0: never)", low=0)
    run: RunOptions = option(RunOptions(), "run options")


class ToyTrainer(Trainer):
    """Draws from every global RNG and its own generator, so a resume that loses any state shows."""

    name = "toy"
    resumable = ("steps", "interrupt_at")

    def __init__(self, cfg: ToyConfig) -> None:
        super().__init__(cfg)
        self.total_steps = cfg.steps
        self.gen = torch.Generator().manual_seed(0)
        self.value = 0.0

    def step(self, step: int):
        self.value += float(torch.rand(1)) + float(np.random.rand()) + float(torch.rand(1, generator=self.gen))
        if step == self.cfg.interrupt_at:
            os.kill(os.getpid(), signal.SIGTERM)
        return {"value": self.value} if step % 2 == 0 else None

    def state_dict(self):
        return {"value": self.value, "gen": self.gen.get_state()}

    def load_state_dict(self, state):
        self.value, _ = state["value"], self.gen.set_state(state["gen"])

    def finish(self, folder, steps):
        return {"value": self.value, "steps": steps}, {}


def toy(run_dir, **kwargs) -> ToyConfig:
    return ToyConfig(run=RunOptions(run_dir=str(run_dir), tensorboard=False, progress=False), **kwargs)


def test_sigterm_checkpoints_and_resume_ends_like_an_uninterrupted_run(tmp_path):
    torch.manual_seed(0)
    np.random.seed(0)
    straight = run_trainer(ToyTrainer(toy(tmp_path / "a")))
    torch.manual_seed(0)
    np.random.seed(0)
    with pytest.raises(Interrupted, match="interrupted by SIGTERM after step 5; checkpoint saved") as info:
        run_trainer(ToyTrainer(toy(tmp_path / "b", interrupt_at=5)))
    assert info.value.step == 5 and load_checkpoint(info.value.checkpoint)["step"] == 5
    torch.manual_seed(123)  # a resumed process starts with other global RNG states
    np.random.seed(123)
    resumed = run_trainer(ToyTrainer(replace_run(toy(tmp_path / "b"), resume=True)))
    assert resumed.final == straight.final
    assert resumed.history == straight.history
    rows = [json.loads(line) for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4, 6, 8, 10]


def test_signal_handlers_are_restored(tmp_path):
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    run_trainer(ToyTrainer(toy(tmp_path / "a", steps=2)))
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_the_final_checkpoint_is_written_before_the_final_evaluation(tmp_path):
    class Failing(ToyTrainer):
        def finish(self, folder, steps):
            raise RuntimeError("evaluation crashed")

    with pytest.raises(RuntimeError, match="evaluation crashed"):
        run_trainer(Failing(toy(tmp_path / "run", steps=4)))
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "latest.pt")["step"] == 4
    resumed = run_trainer(ToyTrainer(replace_run(toy(tmp_path / "run", steps=4), resume=True)))
    assert resumed.final["steps"] == 4  # the evaluation runs again on the saved model


def test_periodic_checkpoints_and_a_budget_below_the_checkpoint(tmp_path):
    cfg = ToyConfig(steps=6, run=RunOptions(run_dir=str(tmp_path / "run"), checkpoint_every=2, progress=False))
    run_trainer(ToyTrainer(cfg))
    with pytest.raises(ValueError, match="checkpoint is at step 6, past the 3 steps asked for"):
        run_trainer(ToyTrainer(replace_run(ToyConfig(steps=3, run=cfg.run), resume=True)))
    more = run_trainer(ToyTrainer(replace_run(ToyConfig(steps=8, run=cfg.run), resume=True)))
    assert more.final["steps"] == 8 and [r["step"] for r in more.history] == [2, 4, 6, 8]


# --------------------------------------------------------------------------- SIGKILL, end to end
def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "commchannels.cli", "train", *args]


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def deterministic(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if "seconds" not in k and k != "wall_time"} for row in rows]


REFERENTIAL = ["referential", "--n-attributes", "2", "--n-values", "5", "--n-candidates", "3", "--vocab-size", "6",
               "--max-len", "2", "--holdout-fraction", "0.2", "--sender-hidden", "16", "--receiver-hidden", "16",
               "--batch-size", "32", "--eval-every", "20", "--eval-games", "64", "--steps", "400",
               "--checkpoint-every", "40", "--no-progress", "--method", "reinforce"]


@pytest.mark.slow
def test_referential_killed_by_sigkill_resumes_to_the_same_metrics(tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    subprocess.run(cli(*REFERENTIAL, "--run-dir", str(straight)), check=True, capture_output=True)
    process = subprocess.Popen(cli(*REFERENTIAL, "--run-dir", str(killed)), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    wait_for(killed / "checkpoints" / "latest.pt", process)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    step = load_checkpoint(killed / "checkpoints" / "latest.pt")["step"]
    assert step < 400, "the run ended before it was killed; raise --steps"
    done = subprocess.run(cli(*REFERENTIAL, "--run-dir", str(killed), "--resume"), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    final = {name: json.loads((folder / "final.json").read_text()) for name, folder in
             (("straight", straight), ("killed", killed))}
    assert deterministic([final["killed"]]) == deterministic([final["straight"]])
    rows = {name: [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
            for name, folder in (("straight", straight), ("killed", killed))}
    assert deterministic(rows["killed"]) == deterministic(rows["straight"])


@pytest.mark.slow
def test_sigint_stops_the_cli_with_a_checkpoint_and_exit_130(tmp_path):
    run = tmp_path / "run"
    process = subprocess.Popen(cli(*REFERENTIAL, "--steps", "100000", "--run-dir", str(run)),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(run / "checkpoints" / "latest.pt", process)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "interrupted by SIGINT" in err and "--resume" in err and "Traceback" not in err
