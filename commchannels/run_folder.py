"""Run folders that can be trusted: one run per folder, locked while it runs, resumed only by
itself.

A run folder holds ``run.json`` (the run's id and trainer), ``config.json``, ``metrics.jsonl`` /
``.csv``, ``tb/``, ``checkpoints/`` and whatever the trainer saves (plots, models, summaries).

* A folder holding another run is refused unless ``resume`` (continue it) or ``overwrite``
  (clear it first) is given; a non-empty folder that is not a run folder is never touched.
* ``.lock`` is held with ``fcntl.flock`` for the whole run, so a second run into the same folder
  fails at once; the kernel releases it when the process dies, even by SIGKILL.
* Every checkpoint stores the run id, and ``resume`` loads only a checkpoint of this folder's
  run, written with the same options (except those a trainer lets change, such as the budget).
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from commchannels.config import Options, check_folder_path, config_to_dict, option
from commchannels.runs import RunLogger, atomic_write_text, load_checkpoint, save_checkpoint

RUN_FILE = "run.json"
# What runs write at the top of their folder; --overwrite removes these and nothing else.
RUN_FILES = ("run.json", "config.json", "metrics.jsonl", "metrics.csv", "final.json", "evaluation.json",
             "analysis.json", "summary.json", "summary.csv", ".lock")
RUN_FOLDERS = ("tb", "checkpoints")
RUN_SUFFIXES = (".pt", ".png")
END_OF_RUN_FILES = ("final.json",)
LOCK_FILE = ".lock"
CHECKPOINTS = "checkpoints"
LATEST = "latest.pt"


@dataclass(frozen=True)
class RunOptions(Options):
    """Where and how a run is recorded (the same options for every trainer)."""

    run_dir: str | None = option(None, "run folder: config, metrics, TensorBoard logs, plots, checkpoints "
                                       "(None: keep nothing on disk)")
    resume: bool = option(False, "continue the run in run_dir from its latest checkpoint")
    overwrite: bool = option(False, "clear run_dir first if it holds another run")
    checkpoint_every: int = option(0, "steps between checkpoints, kept in run_dir/checkpoints (0: only "
                                      "the final one and one on SIGINT/SIGTERM)", low=0)
    tensorboard: bool = option(True, "also write TensorBoard logs in run_dir/tb")
    progress: bool = option(True, "show a progress bar on a terminal")

    def validate(self) -> None:
        if self.run_dir is not None:
            check_folder_path("run_dir", self.run_dir)
        if self.resume and self.overwrite:
            raise ValueError("resume=True and overwrite=True are not allowed together; expected one of them")
        if self.resume and self.run_dir is None:
            raise ValueError("resume=True needs run_dir, the folder of the run to continue")
        if self.checkpoint_every and self.run_dir is None:
            raise ValueError(f"checkpoint_every={self.checkpoint_every} needs run_dir, the folder for the checkpoints")


class RunFolder:
    """The open run folder of one run (``None`` run_dir: metrics kept in memory only).

    Use :meth:`open` as a context manager: it checks the folder, takes the lock, writes
    ``run.json`` (new runs) and ``config.json`` (the options now in force; a resume may have grown
    the budget) and opens the logger; leaving it closes the logger and releases the lock.

    Attributes:
        path: the folder, or ``None``.
        run_id: this run's id (kept across resumes).
        logger: the :class:`~commchannels.runs.RunLogger` of its metrics.
        resume_step: the step of the checkpoint a resumed run continues from (else ``None``).
    """

    def __init__(self, path: Path | None, run_id: str, logger: RunLogger, lock: Any,
                 resume_state: dict[str, Any] | None) -> None:
        self.path, self.run_id, self.logger, self._lock = path, run_id, logger, lock
        self.resume_state = resume_state
        self.resume_step = None if resume_state is None else int(resume_state["step"])

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, options: RunOptions, config: Any, trainer: str,
             resumable: tuple[str, ...] = (), total_steps: int | None = None) -> RunFolder:
        """Open the folder of a run of ``trainer`` configured by ``config``.

        Args:
            options: the run options (``config.run``).
            config: the whole config, saved as ``config.json`` and compared on resume.
            trainer: the trainer's name (``referential``, ``teacher``, ``exchange``).
            resumable: top-level options of ``config`` that may differ on resume (budgets).
            total_steps: the run's step budget: a checkpoint past it is refused before anything
                in the folder changes.

        Raises:
            ValueError: the folder holds another run (and neither resume nor overwrite was
                given), is locked by a running process, or cannot be resumed.
        """
        if options.run_dir is None:
            return cls(None, uuid.uuid4().hex, RunLogger(None), None, None)
        path = Path(options.run_dir).expanduser()
        if options.resume and not (path / RUN_FILE).is_file():
            raise ValueError(f"resume=True but run_dir={str(path)!r} holds no run (no {RUN_FILE}); expected the "
                             "folder of an earlier run")
        path.mkdir(parents=True, exist_ok=True)
        lock = acquire_lock(path)
        try:
            state = None
            if options.resume:
                run_id, state = _check_resumable(path, config, trainer, resumable)
                if total_steps is not None and int(state["step"]) > total_steps:
                    raise ValueError(f"resume=True but the checkpoint is at step {int(state['step'])}, past the "
                                     f"{total_steps} steps asked for; expected a larger budget")
                for stale in END_OF_RUN_FILES:  # written again when the resumed run ends
                    (path / stale).unlink(missing_ok=True)
            else:
                _clear_for_new_run(path, options.overwrite)
                run_id = uuid.uuid4().hex
                atomic_write_text(path / RUN_FILE, json.dumps(
                    {"run_id": run_id, "trainer": trainer, "created": time.strftime("%Y-%m-%dT%H:%M:%S")}, indent=2))
            atomic_write_text(path / "config.json", json.dumps(config_to_dict(config), indent=2))
            logger = RunLogger(path, tensorboard=options.tensorboard,
                               resume_step=None if state is None else int(state["step"]))
        except BaseException:
            release_lock(lock)
            raise
        return cls(path, run_id, logger, lock, state)

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the logger (writes ``metrics.csv``) and release the lock."""
        self.logger.close()
        release_lock(self._lock)
        self._lock = None

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, step: int, state: dict[str, Any]) -> Path | None:
        """Write ``checkpoints/latest.pt`` atomically, stamped with the run id and ``step``."""
        if self.path is None:
            return None
        save_checkpoint(self.path / CHECKPOINTS / LATEST, {**state, "run_id": self.run_id, "step": int(step)})
        return self.path / CHECKPOINTS / LATEST

    def log(self, step: int, row: dict[str, Any]) -> dict[str, Any]:
        """Log one metrics row (see :meth:`RunLogger.log`)."""
        return self.logger.log(step, row)

    def write_json(self, name: str, data: Any) -> Path | None:
        """Write a summary file atomically (nothing without a folder)."""
        return self.logger.write_json(name, data)


# ---------------------------------------------------------------------- helpers
def acquire_lock(path: Path) -> Any:
    """Hold ``path/.lock`` exclusively, or raise ``ValueError`` naming the process that has it."""
    handle = open(path / LOCK_FILE, "a+")  # noqa: SIM115 - held open for the whole run
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "another process"
        handle.close()
        raise ValueError(f"run_dir={str(path)!r} is in use by a running run ({owner}); expected a folder "
                         "no other run is writing") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}\n")
    handle.flush()
    return handle


def release_lock(handle: Any) -> None:
    """Release a lock taken by :func:`acquire_lock` (no-op for ``None``)."""
    if handle is not None and not handle.closed:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def read_run_id(path: Path) -> str | None:
    """The id in ``path/run.json``, or ``None`` when the folder holds no run."""
    try:
        return json.loads((path / RUN_FILE).read_text())["run_id"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _is_run_file(path: Path) -> bool:
    if path.is_dir() and not path.is_symlink():  # its own folders, or a nested run (exchange's method='all')
        return path.name in RUN_FOLDERS or read_run_id(path) is not None
    return path.name in RUN_FILES or path.suffix in RUN_SUFFIXES


def _clear_for_new_run(path: Path, overwrite: bool) -> None:
    entries = [p for p in path.iterdir() if p.name != LOCK_FILE]
    if not entries:
        return
    if read_run_id(path) is None:
        raise ValueError(f"run_dir={str(path)!r} holds files but no commchannels run ({RUN_FILE} is missing: "
                         f"{', '.join(sorted(p.name for p in entries)[:5])}); expected an empty or new folder")
    if not overwrite:
        raise ValueError(f"run_dir={str(path)!r} already holds a run; expected --resume to continue it, "
                         "--overwrite to replace it, or another folder")
    others = sorted(p.name for p in entries if not _is_run_file(p))
    if others:  # a run folder that also holds a user's own files: nothing is deleted
        raise ValueError(f"run_dir={str(path)!r} holds a run and other files {others[:5]}; --overwrite only "
                         "replaces a folder that holds nothing but a run; expected another folder")
    for entry in entries:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _check_resumable(path: Path, config: Any, trainer: str,
                     resumable: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    run_id = read_run_id(path)
    if run_id is None:
        raise ValueError(f"resume=True but run_dir={str(path)!r} holds no run (no {RUN_FILE}); expected the "
                         "folder of an earlier run")
    info = json.loads((path / RUN_FILE).read_text())  # read_run_id parsed it already
    if info.get("trainer") != trainer:
        raise ValueError(f"resume=True but run_dir={str(path)!r} holds a {info.get('trainer')!r} run; expected "
                         f"a {trainer!r} run")
    checkpoint = path / CHECKPOINTS / LATEST
    if not checkpoint.is_file():
        raise ValueError(f"resume=True but run_dir={str(path)!r} holds no checkpoint; expected "
                         f"{CHECKPOINTS}/{LATEST} (the run stopped before its first checkpoint)")
    state = load_checkpoint(checkpoint)
    if state.get("run_id") != run_id:
        raise ValueError(f"resume=True but {str(checkpoint)!r} belongs to run {state.get('run_id')!r}, not to "
                         f"this folder's run {run_id!r}; expected a checkpoint written by this run")
    try:
        saved = json.loads((path / "config.json").read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"resume=True but {str(path / 'config.json')!r} cannot be read ({err}); expected the "
                         "config the run wrote") from None
    allowed = {*resumable, "run"}
    changed = [k for k in changed_options(saved, config) if k not in allowed]
    if changed:
        raise ValueError(f"resume=True but these options differ from the saved run: {changed}; expected the "
                         f"same options (only {sorted(allowed)} may change)")
    return run_id, state


def changed_options(saved: dict[str, Any], config: Any) -> list[str]:
    """Top-level options of ``config`` that differ from a saved ``config.json`` (run options aside)."""
    now = config_to_dict(config)
    return sorted(k for k in {*saved, *now} if k != "run" and saved.get(k) != now.get(k))


def replace_run(config: Any, **changes: Any) -> Any:
    """``config`` with its run options changed (``replace_run(cfg, resume=True)``)."""
    return dataclasses.replace(config, run=dataclasses.replace(config.run, **changes))
