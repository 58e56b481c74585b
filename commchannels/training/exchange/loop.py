"""The training loop every process runs over its local workers, whatever the method or mode."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from commchannels.config import config_to_dict
from commchannels.data import Dataset, load_dataset
from commchannels.runs import RunLogger, atomic_write_text, load_checkpoint, save_checkpoint
from commchannels.seeding import torch_generator
from commchannels.training.exchange.comm import Communicator, SimCommunicator
from commchannels.training.exchange.config import Config, parse_fault
from commchannels.training.exchange.methods import METHOD_CLASSES, Worker, build_model
from commchannels.training.exchange.server import ParameterServer
from commchannels.training.result import Result

# Options that may differ between a run and its resumption.
RESUMABLE = ("steps", "resume", "run_dir", "checkpoint_every", "timeout", "inject_fault", "mode")


def split_data(cfg: Config, data: Dataset) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
    """Seeded split of the training set into ``workers`` disjoint labelled shards and the
    public pool of unlabelled inputs (held-out examples, plus every shard's inputs when
    ``public_pool='train'``)."""
    n = len(data.y_train) if cfg.train_size == 0 else min(cfg.train_size, len(data.y_train))
    order = torch.randperm(len(data.y_train), generator=torch_generator(cfg.seed))[:n]
    if cfg.public_size >= n:
        raise ValueError(f"public_size={cfg.public_size} is too large; expected fewer than the "
                         f"{n} training examples")
    public, rest = order[:cfg.public_size], order[cfg.public_size:]
    per_worker = len(rest) // cfg.workers
    if per_worker < 1:
        raise ValueError(f"workers={cfg.workers} is too large; the {len(rest)} training examples "
                         "left after the public pool give each worker at least one only for "
                         f"workers <= {len(rest)}")
    if cfg.batch_size > per_worker:
        raise ValueError(f"batch_size={cfg.batch_size} is too large; each of the {cfg.workers} "
                         f"shards holds {per_worker} examples")
    shards = [rest[i * per_worker:(i + 1) * per_worker] for i in range(cfg.workers)]
    if cfg.public_pool == "train":  # every input may be read by every worker; labels stay private
        public = torch.cat([public, rest[:per_worker * cfg.workers]])
    return data.x_train[public], [(data.x_train[s], data.y_train[s]) for s in shards]


def load_data(cfg: Config) -> Dataset:
    """The configured data set (validates ``data_path`` for MNIST)."""
    return load_dataset(cfg.dataset, cfg.data_path)


def _checkpoint_root(cfg: Config) -> Path:
    return Path(cfg.run_dir) / "checkpoints"


def latest_checkpoint(cfg: Config) -> int | None:
    """Step of the latest complete checkpoint in ``run_dir``, or ``None``."""
    pointer = _checkpoint_root(cfg) / "latest.json" if cfg.run_dir else None
    return json.loads(pointer.read_text())["step"] if pointer and pointer.is_file() else None


def check_resumable(cfg: Config) -> int:
    step = latest_checkpoint(cfg)
    if step is None:
        raise ValueError(f"resume=True but run_dir={cfg.run_dir!r} holds no checkpoint")
    saved = json.loads((Path(cfg.run_dir) / "config.json").read_text())
    now = config_to_dict(cfg)
    changed = sorted(k for k in saved if k not in RESUMABLE and saved[k] != now[k])
    if changed:
        raise ValueError(f"resume=True but these options differ from the saved run: {changed}")
    return step


def _maybe_fail(cfg: Config, local: list[int], step: int, simulated: bool) -> None:
    if not cfg.inject_fault:
        return
    worker, at, kind = parse_fault(cfg.inject_fault)
    if worker not in local or step != at:
        return
    if kind == "exit" and not simulated:
        os._exit(3)
    if kind == "hang" and not simulated:
        time.sleep(10**6)
    raise RuntimeError(f"injected fault: worker {worker} {kind} at step {step}")


def serve_async(cfg: Config, comm: Any, start: int) -> None:
    """The parameter-server process of multi-process async-sgd, checkpointing with the workers."""
    data = load_data(cfg)
    init = build_model(cfg, 0, data.n_features, data.n_classes)
    server = ParameterServer(torch.nn.utils.parameters_to_vector(init.parameters()).detach(),
                             cfg.optimizer, cfg.lr)
    if start:
        server.load_state_dict(load_checkpoint(_checkpoint_root(cfg) / f"step_{start:08d}" / "server.pt"))
    every = cfg.checkpoint_every
    boundaries = sorted({s for s in range(start + 1, cfg.steps + 1) if every and s % every == 0}
                        | {cfg.steps})
    for boundary in boundaries:
        comm.serve(server, cfg.workers * (boundary - start))
        if boundary < cfg.steps:
            save_checkpoint(_checkpoint_root(cfg) / f"step_{boundary:08d}" / "server.pt",
                            {"server": server.state_dict()})
            comm.barrier()
        start = boundary
    comm.barrier()


def run_workers(cfg: Config, comm: Communicator, models_dir: Path | None = None) -> Result | None:
    """Train the workers this process holds; the logging process returns the :class:`Result`."""
    # ---- setup
    data = load_data(cfg)
    public_x, shards = split_data(cfg, data)
    workers = [Worker(cfg, i, shards[i], data.n_classes) for i in comm.local]
    method = METHOD_CLASSES[cfg.method](cfg, workers, comm, public_x, data.n_classes)
    simulated = isinstance(comm, SimCommunicator)
    if simulated and cfg.method == "async-sgd":
        init = build_model(cfg, 0, data.n_features, data.n_classes)
        comm.server = ParameterServer(torch.nn.utils.parameters_to_vector(init.parameters()).detach(),
                                      cfg.optimizer, cfg.lr)
    start, elapsed = 0, 0.0
    loss_sums = [0.0] * len(workers)
    n_losses = 0
    # ---- resume
    if cfg.resume:
        start = check_resumable(cfg)
        folder = _checkpoint_root(cfg) / f"step_{start:08d}"
        for i, worker in enumerate(workers):
            state = load_checkpoint(folder / f"worker_{worker.index}.pt")
            worker.load_state_dict(state["worker"])
            method.load_state_dict(i, state["method"])
            comm.sent[i], comm.received[i] = int(state["sent"]), int(state["received"])
            elapsed, loss_sums[i], n_losses = state["elapsed"], state["loss_sum"], state["n_losses"]
        if simulated and comm.server is not None:
            state = load_checkpoint(folder / "server.pt")
            comm.server.load_state_dict(state["server"])
            comm.load_state_dict(state["comm"])
    logger = None
    if comm.is_logger:
        if cfg.resume:  # drop rows logged after the checkpoint by the interrupted run
            jsonl = Path(cfg.run_dir) / "metrics.jsonl"
            rows = [r for r in jsonl.read_text().splitlines() if r and json.loads(r)["step"] <= start]
            atomic_write_text(jsonl, "".join(r + "\n" for r in rows))
        logger = RunLogger(cfg.run_dir, cfg, tensorboard=cfg.run_dir is not None and cfg.tensorboard,
                           resume=cfg.resume)
    # ---- train
    try:
        tick = time.perf_counter()
        for step in range(start, cfg.steps):
            _maybe_fail(cfg, comm.local, step, simulated)
            batches = [w.next_batch(cfg.batch_size) for w in workers]
            for i, loss in enumerate(method.step(step, batches)):
                loss_sums[i] += loss
            n_losses += 1
            done = step + 1
            if done % cfg.eval_every and done != cfg.steps and not (
                    cfg.checkpoint_every and done % cfg.checkpoint_every == 0):
                continue
            elapsed += time.perf_counter() - tick  # wall time excludes evaluation and checkpoints
            # ---- evaluate and log
            if done % cfg.eval_every == 0 or done == cfg.steps:
                mine = []
                for i, w in enumerate(workers):
                    with torch.no_grad():
                        acc = (w.model(data.x_test).argmax(1) == data.y_test).float().mean().item()
                    mine.append({"test_acc": acc, "train_loss": loss_sums[i] / max(n_losses, 1),
                                 "sent": comm.sent[i], "received": comm.received[i],
                                 **method.extra_metrics(i)})
                rows = [r for per_process in comm.gather([mine]) for r in per_process]
                loss_sums, n_losses = [0.0] * len(workers), 0
                if logger is not None:
                    logger.log(done, _aggregate(rows, elapsed))
            # ---- checkpoint
            if cfg.checkpoint_every and done % cfg.checkpoint_every == 0 and done < cfg.steps:
                _save(cfg, comm, workers, method, done, elapsed, loss_sums, n_losses)
            tick = time.perf_counter()
        # ---- save (inside the try: the logger closes either way)
        if models_dir is not None:
            for w in workers:
                save_checkpoint(models_dir / f"model_worker_{w.index}.pt", w.model.state_dict())
    finally:
        if logger is not None:  # also on a crash: flush TensorBoard, write the CSV so far
            logger.close()
    comm.barrier()
    if logger is None:
        return None
    final = {k: v for k, v in logger.rows[-1].items() if k != "step"} if logger.rows else {}
    run_dir = Path(cfg.run_dir) if cfg.run_dir else None
    return Result(final=final, history=logger.rows, run_dir=run_dir,
                  extras={"models": [w.model for w in workers] if simulated else None,
                          "staleness": getattr(method, "staleness", None)})


def _aggregate(rows: list[dict[str, float]], elapsed: float) -> dict[str, float]:
    accs = [r["test_acc"] for r in rows]
    out = {"test_acc": sum(accs) / len(accs), "test_acc_min": min(accs), "test_acc_max": max(accs),
           "train_loss": sum(r["train_loss"] for r in rows) / len(rows),
           "bytes_sent": sum(r["sent"] for r in rows), "bytes_received": sum(r["received"] for r in rows),
           "wall_time": elapsed}
    if "staleness" in rows[0]:
        out["staleness"] = sum(r["staleness"] for r in rows) / len(rows)
    out.update({f"test_acc_worker_{i}": a for i, a in enumerate(accs)})
    return out


def _save(cfg: Config, comm: Communicator, workers: list[Worker], method: Any, step: int,
          elapsed: float, loss_sums: list[float], n_losses: int) -> None:
    root = _checkpoint_root(cfg)
    folder = root / f"step_{step:08d}"
    for i, w in enumerate(workers):
        save_checkpoint(folder / f"worker_{w.index}.pt",
                        {"worker": w.state_dict(), "method": method.state_dict(i), "step": step,
                         "sent": comm.sent[i], "received": comm.received[i], "elapsed": elapsed,
                         "loss_sum": loss_sums[i], "n_losses": n_losses})
    if isinstance(comm, SimCommunicator) and comm.server is not None:
        save_checkpoint(folder / "server.pt", {"server": comm.server.state_dict(),
                                               "comm": comm.state_dict()})
    comm.barrier()  # every process has written its part before the pointer moves
    if comm.is_logger:
        atomic_write_text(root / "latest.json", json.dumps({"step": step}))
        for old in root.glob("step_*"):
            if old != folder:
                shutil.rmtree(old, ignore_errors=True)
