"""Multi-process execution: one process per worker on torch.distributed (gloo, or NCCL on GPUs).

Two ways in: under ``torchrun`` (``RANK`` / ``WORLD_SIZE`` / ``MASTER_ADDR`` set, any number
of machines) each process runs :func:`run_rank`; ``--mode processes`` makes :func:`launch`
start the processes on 127.0.0.1 itself and watch them. A process that raises or exits makes
the launcher stop the others at once; one that hangs makes its peers fail when the process
group's timeout (``--timeout``) expires, and the launcher then stops everything.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from commchannels.runs import atomic_write_text, load_checkpoint
from commchannels.training.exchange.comm import DistCommunicator
from commchannels.training.exchange.config import Config
from commchannels.training.exchange.loop import check_resumable, run_workers, serve_async
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


def run_rank(cfg: Config, models_dir: Path | None, result_path: Path | None = None) -> Result | None:
    """Run this process's part (a worker, or the async-sgd parameter server) of a job whose
    process group is initialised. The rank-0 process returns the :class:`Result`."""
    device = torch.device("cpu")
    if dist.get_backend() == "nccl":
        device = torch.device("cuda", torch.cuda.current_device())
    comm = DistCommunicator(cfg.workers, cfg.method == "async-sgd", device, cfg.timeout)
    if dist.get_rank() == cfg.workers:
        serve_async(cfg, comm, check_resumable(cfg) if cfg.resume else 0)
        return None
    result = run_workers(cfg, comm, models_dir)
    if result is not None and result_path is not None:
        atomic_write_text(result_path, json.dumps({"final": result.final, "history": result.history}))
    return result


def train_torchrun(cfg: Config) -> Result | None:
    """Entry under torchrun: check the world size, join the group, run this rank."""
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
    try:
        return run_rank(cfg, Path(cfg.run_dir) if cfg.run_dir else None)
    finally:
        dist.destroy_process_group()


def _entry(local_rank: int, cfg: Config, port: int, out_dir: str) -> None:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    backend, _ = _backend_and_device(local_rank, cfg.world_size)
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=local_rank,
                            world_size=cfg.world_size, timeout=timedelta(seconds=cfg.timeout))
    try:
        models = Path(cfg.run_dir) if cfg.run_dir else Path(out_dir)
        run_rank(cfg, models, Path(out_dir) / "result.json")
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(cfg: Config) -> Result:
    """Start ``cfg.world_size`` processes on 127.0.0.1, watch them, return rank 0's result.

    Raises:
        RuntimeError: naming the process that failed, as soon as one raises or exits.
    """
    with tempfile.TemporaryDirectory(prefix="exchange-") as out_dir:
        context = mp.start_processes(_entry, args=(cfg, free_port(), out_dir), nprocs=cfg.world_size,
                                     join=False, start_method="spawn")
        try:
            while not context.join(timeout=0.5):
                pass
        except mp.ProcessRaisedException as err:
            last = str(err).strip().splitlines()[-1]
            hint = (f" (a peer died or hung: nothing arrived within --timeout {cfg.timeout:g} s)"
                    if "timed out" in last.lower() or "timeout" in last.lower() else "")
            raise RuntimeError(f"{err}\nexchange: process {err.error_index} of {cfg.world_size} failed "
                               f"with: {last}{hint}; the other processes were stopped") from None
        except mp.ProcessExitedException as err:
            raise RuntimeError(f"exchange: process {err.error_index} of {cfg.world_size} exited with "
                               f"code {err.exit_code}; the other processes were stopped") from None
        finally:
            for process in context.processes:
                if process.is_alive():
                    process.kill()
        data = json.loads((Path(out_dir) / "result.json").read_text())
        models_dir = Path(cfg.run_dir) if cfg.run_dir else Path(out_dir)
        models = [load_checkpoint(models_dir / f"model_worker_{i}.pt") for i in range(cfg.workers)]
    return Result(final=data["final"], history=data["history"],
                  run_dir=Path(cfg.run_dir) if cfg.run_dir else None, extras={"state_dicts": models})
