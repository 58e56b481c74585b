"""Multi-process execution: one process per worker on torch.distributed (gloo, or NCCL on GPUs).

Two ways in: under ``torchrun`` (``RANK`` / ``WORLD_SIZE`` / ``MASTER_ADDR`` set, any number
of machines) each process runs :func:`run_rank`, and rank 0 opens the run folder while the
others wait; ``--mode processes`` makes :func:`launch` open the run folder, start the processes
on 127.0.0.1 itself and watch them. A process that raises or exits makes the launcher stop the
others at once; one that hangs makes its peers fail when the process group's timeout
(``--timeout``) expires, and the launcher names the process that stopped making progress (from a
:class:`~.comm.ProgressBoard`) and stops everything. SIGINT / SIGTERM stop every process at the
next evaluation or checkpoint, after a checkpoint.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from commchannels.runs import RunLogger, atomic_write_text, load_checkpoint
from commchannels.training.exchange.comm import DistCommunicator, ProgressBoard
from commchannels.training.exchange.config import Config
from commchannels.training.exchange.loop import RunInfo, open_folder, run_workers, serve_async
from commchannels.training.protocol import Interrupted, stop_on_signals
from commchannels.training.result import Result


def under_torchrun() -> bool:
    """Whether this process was started by torchrun (or another env:// launcher)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def _backend_and_device(local_rank: int, local_world: int) -> tuple[str, torch.device]:
    # NCCL needs one GPU per process; otherwise every process stays on the CPU with gloo.
    if torch.cuda.is_available() and torch.cuda.device_count() >= local_world:
        torch.cuda.set_device(local_rank)
        return "nccl", torch.device("cuda", local_rank)
    return "gloo", torch.device("cpu")


def role(cfg: Config, rank: int) -> str:
    """What process ``rank`` runs: ``worker <i>`` or ``parameter server``."""
    return "parameter server" if rank == cfg.workers else f"worker {rank}"


def run_rank(cfg: Config, run: RunInfo, models_dir: Path | None, result_path: Path | None = None,
             board: ProgressBoard | None = None, logger: RunLogger | None = None) -> Result | None:
    """Run this process's part (a worker, or the async-sgd parameter server) of a job whose
    process group is initialised. The rank-0 process returns the :class:`Result`."""
    device = torch.device("cpu")
    if dist.get_backend() == "nccl":
        device = torch.device("cuda", torch.cuda.current_device())
    comm = DistCommunicator(cfg.workers, cfg.method == "async-sgd", device, cfg.timeout, board)
    if dist.get_rank() == cfg.workers:
        serve_async(cfg, comm, run)
        return None
    result = run_workers(cfg, comm, run, logger, models_dir)
    if result is not None and result_path is not None:
        atomic_write_text(result_path, json.dumps({"final": result.final, "history": result.history}))
    return result


def train_torchrun(cfg: Config) -> Result | None:
    """Entry under torchrun: check the world size, join the group; rank 0 opens the run folder
    (the others wait for it), then every rank runs its part."""
    world, rank = int(os.environ["WORLD_SIZE"]), int(os.environ["RANK"])
    if world != cfg.world_size:
        extra = " + 1 parameter server" if cfg.method == "async-sgd" else ""
        raise ValueError(f"workers={cfg.workers} needs {cfg.world_size} processes ({cfg.workers} "
                         f"workers{extra}) but torchrun started WORLD_SIZE={world}")
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    backend, _ = _backend_and_device(local_rank, local_world)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    dist.init_process_group(backend, timeout=timedelta(seconds=cfg.timeout))
    folder, error = None, None
    try:
        if rank == 0:
            try:
                folder, run = open_folder(cfg)
            except (ValueError, OSError) as err:
                error, run = err, None
        box = [(run, None if error is None else str(error))] if rank == 0 else [None]
        dist.broadcast_object_list(box, src=0)
        run, message = box[0]
        if error is not None:
            raise error
        if message is not None:
            raise ValueError(f"rank 0 could not open the run folder: {message}")
        models = Path(cfg.run.run_dir) if cfg.run.run_dir else None
        return run_rank(cfg, run, models, logger=folder.logger if folder else None)
    finally:
        if folder is not None:
            folder.close()
        dist.destroy_process_group()


def _entry(local_rank: int, cfg: Config, run: RunInfo, port: int, out_dir: str, board: ProgressBoard) -> None:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    backend, _ = _backend_and_device(local_rank, cfg.world_size)
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=local_rank,
                            world_size=cfg.world_size, timeout=timedelta(seconds=cfg.timeout))
    try:
        models = run.path if run.path is not None else Path(out_dir)
        run_rank(cfg, run, models, Path(out_dir) / "result.json", board)
    except Interrupted as err:  # every process saved its part; the launcher reports it
        if local_rank == 0:
            atomic_write_text(Path(out_dir) / "interrupted.json", json.dumps(
                {"signum": err.signum, "step": err.step,
                 "checkpoint": None if err.checkpoint is None else str(err.checkpoint)}))
    finally:
        dist.destroy_process_group()
    # Everything this process owes is written and closed (its result or interrupted.json, its
    # checkpoint parts, its logs). Skip the interpreter's teardown: destroying torch's gloo / DDP
    # objects there can abort the process ("terminate called without an active exception"), which
    # the launcher would report as a crash. Errors never get here: they propagate as before.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stalled(cfg: Config, board: ProgressBoard) -> str:
    """Which process stopped making progress, for the error after a peer's timeout."""
    ranks = board.stalled()
    who = ", ".join(f"process {r} ({role(cfg, r)}) in step {board.step(r)}" for r in ranks)
    if not ranks:
        return ""
    if not board.waiting(ranks[0]):
        return f"; hung: {who}, which was not waiting on any peer while they waited on it"
    return f"; every process was waiting on another, the furthest behind: {who}"


def launch(cfg: Config) -> Result:
    """Open the run folder, start ``cfg.world_size`` processes on 127.0.0.1, watch them, return
    rank 0's result.

    Raises:
        RuntimeError: naming the process that failed, exited or hung, as soon as one does.
        Interrupted: SIGINT / SIGTERM stopped the processes (after a checkpoint).
    """
    folder, run = open_folder(cfg, log=False)
    with folder, tempfile.TemporaryDirectory(prefix="exchange-") as out_dir:
        board = ProgressBoard(cfg.world_size)
        context = mp.start_processes(_entry, args=(cfg, run, free_port(), out_dir, board), nprocs=cfg.world_size,
                                     join=False, start_method="spawn")
        try:
            with stop_on_signals() as stop:
                forwarded = False
                while not context.join(timeout=0.5):
                    if stop.signum is not None and not forwarded:  # stop them at their next evaluation
                        for process in context.processes:
                            if process.is_alive():
                                os.kill(process.pid, signal.SIGTERM)
                        forwarded = True
        except mp.ProcessRaisedException as err:
            lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
            # the exception's own line: DDP's hook errors end with a trace ("At: ... <lambda>") after it
            last = next((line for line in reversed(lines) if "Error:" in line or "Exception:" in line), lines[-1])
            timed_out = "timed out" in last.lower() or "timeout" in last.lower()
            hint = (f" (a peer died or hung: nothing arrived within --timeout {cfg.timeout:g} s"
                    f"{_stalled(cfg, board)})" if timed_out else "")
            raise RuntimeError(f"{err}\nexchange: process {err.error_index} ({role(cfg, err.error_index)}) of "
                               f"{cfg.world_size} failed with: {last}{hint}; the other processes were "
                               "stopped") from None
        except mp.ProcessExitedException as err:
            raise RuntimeError(f"exchange: process {err.error_index} ({role(cfg, err.error_index)}) of "
                               f"{cfg.world_size} exited with code {err.exit_code}; the other processes "
                               "were stopped") from None
        finally:
            for process in context.processes:
                if process.is_alive():
                    process.kill()
        stopped = Path(out_dir) / "interrupted.json"
        if stopped.is_file():
            info = json.loads(stopped.read_text())
            raise Interrupted(stop.signum or info["signum"], info["step"], info["checkpoint"])
        data = json.loads((Path(out_dir) / "result.json").read_text())
        models_dir = run.path if run.path is not None else Path(out_dir)
        models = [load_checkpoint(models_dir / f"model_worker_{i}.pt") for i in range(cfg.workers)]
    return Result(final=data["final"], history=data["history"], run_dir=run.path,
                  extras={"state_dicts": models, "run_id": run.run_id})
