"""The trainer protocol: what every training loop shares, written once.

A trainer (like EGG's ``Trainer`` with callbacks, or SB3's ``BaseCallback``) supplies only its
own work: ``step`` (one update, returning a metrics row when it evaluates), ``state_dict`` /
``load_state_dict`` and ``finish`` (the final evaluation and artifacts). :func:`run_trainer`
supplies the rest, the same way for every trainer:

* the run folder (:class:`~commchannels.run_folder.RunFolder`: refusal, lock, run id, config);
* logging (``metrics.jsonl`` / ``.csv``, TensorBoard) and a progress bar;
* periodic atomic checkpoints (``run.checkpoint_every``), a checkpoint on SIGINT / SIGTERM
  (then :class:`Interrupted` is raised), and a final one *before* ``finish`` so a crash in the
  final evaluation keeps the trained model;
* ``--resume``: the trainer's state, every global RNG and the metrics up to the checkpoint are
  restored, so a resumed run ends with the same metrics as an uninterrupted one;
* the result record (``final.json`` and :class:`~commchannels.training.result.Result`).
"""

from __future__ import annotations

import contextlib
import random
import signal
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from commchannels.run_folder import RunFolder
from commchannels.runs import progress
from commchannels.training.result import Result


class Interrupted(Exception):
    """A run stopped by SIGINT or SIGTERM after saving a checkpoint.

    Attributes:
        signum: the signal number.
        step: the last completed step (the checkpoint's).
        checkpoint: where the checkpoint was written (``None`` without a run folder).
    """

    def __init__(self, signum: int, step: int, checkpoint: Any) -> None:
        name = signal.Signals(signum).name
        where = (f"checkpoint saved in {str(checkpoint)!r}; continue with --resume" if checkpoint is not None
                 else "no run_dir, so nothing was saved")
        super().__init__(f"interrupted by {name} after step {step}; {where}")
        self.signum, self.step, self.checkpoint = signum, step, checkpoint


class Trainer(ABC):
    """One training run. Subclasses set the class attributes and implement the methods.

    Attributes:
        name: the trainer's name (``commchannels train NAME``), stored in ``run.json``.
        resumable: top-level config options that may change on ``--resume`` (budgets).
        total_steps: steps :func:`run_trainer` runs at most.
    """

    name: str = "trainer"
    resumable: tuple[str, ...] = ()
    total_steps: int = 0

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg

    @abstractmethod
    def step(self, step: int) -> dict[str, Any] | None:
        """Do step number ``step`` (1-based); return a metrics row to log, or ``None``."""

    def should_stop(self) -> bool:
        """Whether to end before ``total_steps`` (a time budget, a target reached)."""
        return False

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs: modules, optimisers, generators, counters."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""

    @abstractmethod
    def finish(self, folder: RunFolder, steps: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """Final evaluation and artifacts after ``steps`` steps: ``(final metrics, extras)``."""

    def progress_postfix(self, row: dict[str, Any]) -> dict[str, str]:
        """What the progress bar shows after a logged row."""
        return {}

    def close(self) -> None:  # noqa: B027 - an optional hook: most trainers change nothing process-wide
        """Undo any process-wide setting the trainer changed (always called)."""


# ---------------------------------------------------------------------- global RNGs
def rng_state() -> dict[str, Any]:
    """The global RNG states of torch (CPU and any CUDA device in use), numpy and ``random``
    (checkpoint-safe values)."""
    mt_name, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else []
    return {"torch": torch.get_rng_state(), "cuda": cuda,
            "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "gauss": float(gauss)},
            "random": {"version": version, "internal": list(internal), "gauss_next": gauss_next}}


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():  # sampling on a GPU draws from its own generator
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    r = state["random"]
    random.setstate((r["version"], tuple(r["internal"]), r["gauss_next"]))


# ---------------------------------------------------------------------- signals
class _StopRequest:
    signum: int | None = None


@contextlib.contextmanager
def stop_on_signals() -> Iterator[_StopRequest]:
    """Within the block, SIGINT / SIGTERM set ``request.signum`` instead of killing the process,
    so the loop can checkpoint at the end of its step. A second SIGINT interrupts at once."""
    request = _StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request  # signal handlers can only be set from the main thread
        return

    def handler(signum: int, frame: Any) -> None:
        if request.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        request.signum = signum

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield request
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


# ---------------------------------------------------------------------- the loop
def run_trainer(trainer: Trainer) -> Result:
    """Run ``trainer`` under its config's run options (``trainer.cfg.run``); see the module doc.

    Raises:
        Interrupted: after SIGINT / SIGTERM, once the checkpoint is written.
    """
    cfg = trainer.cfg
    try:
        with RunFolder.open(cfg.run, cfg, trainer.name, trainer.resumable, trainer.total_steps) as folder:
            return _run(trainer, folder)
    finally:
        trainer.close()


def _run(trainer: Trainer, folder: RunFolder) -> Result:
    cfg = trainer.cfg
    start = 0
    if folder.resume_state is not None:  # RunFolder.open refused a checkpoint past the budget
        start = folder.resume_step
        trainer.load_state_dict(folder.resume_state["trainer"])
        set_rng_state(folder.resume_state["rng"])

    def checkpoint(step: int) -> Any:
        return folder.save_checkpoint(step, {"trainer": trainer.state_dict(), "rng": rng_state()})

    step = start
    bar = progress(total=trainer.total_steps, desc=trainer.name, enabled=cfg.run.progress)
    bar.update(start)
    try:
        with stop_on_signals() as stop:
            while step < trainer.total_steps and not trainer.should_stop():
                step += 1
                row = trainer.step(step)
                if row is not None:
                    folder.log(step, row)
                    bar.set_postfix(trainer.progress_postfix(row))
                bar.update(step - bar.n)
                every = cfg.run.checkpoint_every
                if stop.signum is not None:
                    raise Interrupted(stop.signum, step, checkpoint(step))
                if every and step % every == 0 and step < trainer.total_steps:
                    checkpoint(step)
    finally:
        bar.close()
    checkpoint(step)  # before finish(): a crash in the final evaluation keeps the trained model
    final, extras = trainer.finish(folder, step)
    final = {k: None if isinstance(v, float) and v != v else v for k, v in final.items()}  # NaN: undefined
    folder.write_json("final.json", final)
    return Result(final=final, history=folder.logger.rows, run_dir=folder.path,
                  extras={**extras, "run_id": folder.run_id})
