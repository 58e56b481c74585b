"""The training loop every process runs over its local workers, whatever the method or mode.

Checkpoints (``run.checkpoint_every``, a final one, and one when SIGINT / SIGTERM stops the run)
are written in ``checkpoints/step_<N>/`` of the run folder, one file per worker (and
``server.pt`` for async-sgd's parameter server), by the process that holds each part; once every
part is written the logging process moves ``checkpoints/latest.pt`` to that step. Every file
carries the run id and the step, and a resumed run loads only parts of its own run at the step
``latest.pt`` names.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch

from commchannels.data import Dataset, load_dataset
from commchannels.run_folder import CHECKPOINTS, LATEST, RunFolder
from commchannels.runs import RunLogger, load_checkpoint, progress, save_checkpoint
from commchannels.seeding import torch_generator
from commchannels.training.exchange.comm import Communicator, LinkModel, SimCommunicator
from commchannels.training.exchange.config import RESUMABLE, Config, parse_bandwidth, parse_fault
from commchannels.training.exchange.methods import METHOD_CLASSES, Worker, build_model
from commchannels.training.exchange.report import plot_results
from commchannels.training.exchange.server import ParameterServer
from commchannels.training.protocol import Interrupted, stop_on_signals
from commchannels.training.result import Result
from commchannels.training.threads import torch_threads


@dataclass(frozen=True)
class RunInfo:
    """What every process of a run needs to know about its run folder (sent to spawned processes).

    Attributes:
        path: the run folder, or ``None`` (nothing written).
        run_id: the id stamped on every checkpoint file.
        start: the step of the checkpoint a resumed run continues from (0 for a new run).
        tensorboard: whether the logging process also writes TensorBoard logs.
    """

    path: Path | None
    run_id: str
    start: int = 0
    tensorboard: bool = False


def open_folder(cfg: Config, log: bool = True) -> tuple[RunFolder, RunInfo]:
    """Open ``cfg.run.run_dir`` for this run (refusal, lock, ``run.json``, ``config.json``; see
    :class:`~commchannels.run_folder.RunFolder`) in the process that owns it. With ``log=False``
    another process (rank 0 of ``--mode processes``) writes the metrics."""
    options = cfg.run if log else dataclasses.replace(cfg.run, tensorboard=False)
    folder = RunFolder.open(options, cfg, "exchange", RESUMABLE, total_steps=cfg.steps)
    try:
        start = folder.resume_step or 0
        if not log:
            folder.logger.close()
            folder.logger = RunLogger(None)  # rank 0 logs; closing the folder must not rewrite its CSV
    except BaseException:
        folder.close()
        raise
    return folder, RunInfo(folder.path, folder.run_id, start, cfg.run.tensorboard)


class Split(NamedTuple):
    """The training set split for one run (every part disjoint from the others)."""

    public: torch.Tensor  # unlabelled inputs of the public pool
    shards: list[tuple[torch.Tensor, torch.Tensor]]  # one labelled shard per worker
    val: tuple[torch.Tensor, torch.Tensor]  # the validation split (empty when val_size=0)


def split_data(cfg: Config, data: Dataset) -> Split:
    """Seeded split of the training set into a labelled validation split (``val_size``),
    ``workers`` disjoint labelled shards and the public pool of unlabelled inputs (held-out
    examples, plus every shard's inputs when ``public_pool='train'``)."""
    n = len(data.y_train) if cfg.train_size == 0 else min(cfg.train_size, len(data.y_train))
    order = torch.randperm(len(data.y_train), generator=torch_generator(cfg.seed))[:n]
    if cfg.val_size + cfg.public_size >= n:
        raise ValueError(f"public_size={cfg.public_size} with val_size={cfg.val_size} is too large; expected "
                         f"fewer than the {n} training examples in all")
    # the validation split comes last, so val_size=0 leaves every other part as it was
    val, order = order[n - cfg.val_size:], order[:n - cfg.val_size]
    if cfg.topk > data.n_classes:
        raise ValueError(f"topk={cfg.topk} is too large; expected at most the {data.n_classes} classes of "
                         f"{cfg.dataset} (0: all)")
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
    return Split(data.x_train[public], [(data.x_train[s], data.y_train[s]) for s in shards],
                 (data.x_train[val], data.y_train[val]))


def load_data(cfg: Config) -> Dataset:
    """The configured data set (validates ``data_path`` for MNIST)."""
    return load_dataset(cfg.dataset, cfg.data_path)


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


# ---------------------------------------------------------------------- checkpoint parts
def _part_path(run: RunInfo, step: int, name: str) -> Path:
    return run.path / CHECKPOINTS / f"step_{step:08d}" / name


def _save_part(run: RunInfo, step: int, name: str, state: dict[str, Any]) -> None:
    save_checkpoint(_part_path(run, step, name), {**state, "run_id": run.run_id, "step": step})


def _load_part(run: RunInfo, name: str) -> dict[str, Any]:
    path = _part_path(run, run.start, name)
    state = load_checkpoint(path)
    if state.get("run_id") != run.run_id or state.get("step") != run.start:
        raise ValueError(f"resume=True but {str(path)!r} belongs to run {state.get('run_id')!r} at step "
                         f"{state.get('step')!r}; expected this folder's run {run.run_id!r} at step {run.start}")
    return state


def _publish(run: RunInfo, step: int) -> Path:
    """Point ``latest.pt`` at the complete checkpoint of ``step`` and delete older ones."""
    root = run.path / CHECKPOINTS
    save_checkpoint(root / LATEST, {"run_id": run.run_id, "step": step, "folder": f"step_{step:08d}"})
    for old in root.glob("step_*"):
        if old.name != f"step_{step:08d}":
            shutil.rmtree(old, ignore_errors=True)
    return root / LATEST


def checkpoint_steps(cfg: Config, run: RunInfo) -> list[int]:
    """Steps after ``run.start`` whose end writes a checkpoint (every ``checkpoint_every``, and the last)."""
    if run.path is None:
        return []
    every = cfg.run.checkpoint_every
    return [s for s in range(run.start + 1, cfg.steps + 1) if (every and s % every == 0) or s == cfg.steps]


# ---------------------------------------------------------------------- the parameter server
def serve_async(cfg: Config, comm: Any, run: RunInfo) -> None:
    """The parameter-server process of multi-process async-sgd, checkpointing with the workers
    and stopping with them when they are interrupted."""
    data = load_data(cfg)
    init = build_model(cfg, 0, data.input_shape, data.n_classes)
    server = ParameterServer(torch.nn.utils.parameters_to_vector(init.parameters()).detach(),
                             cfg.optimizer, cfg.lr, cfg.weight_decay)
    if run.start:
        server.load_state_dict(_load_part(run, "server.pt")["server"])
    step, saves = run.start, checkpoint_steps(cfg, run)
    with stop_on_signals():  # a signal stops the workers, and they stop the server
        for boundary in saves or [cfg.steps]:  # the workers' checkpoints (the last one is at cfg.steps)
            comm.began(step)
            wanted = cfg.workers * (boundary - step)
            applied = comm.serve(server, wanted)
            step += applied // cfg.workers
            stopped = applied < wanted  # every worker was stopped by a signal after this step
            if boundary in saves or (stopped and run.path is not None):
                _save_part(run, step, "server.pt", {"server": server.state_dict()})
                stopped = bool(comm.agree(0)) or stopped
            if stopped:
                return
        comm.barrier()


# ---------------------------------------------------------------------- the workers
def run_workers(cfg: Config, comm: Communicator, run: RunInfo, logger: RunLogger | None = None,
                models_dir: Path | None = None) -> Result | None:
    """Train the workers this process holds; the logging process returns the :class:`Result`.

    Args:
        cfg: the run's options.
        comm: this process's communicator.
        run: the run folder's id and resume step.
        logger: the logging process's logger (``None``: it opens one on ``run.path``).
        models_dir: where each worker's final model is saved (``None``: not saved).

    Raises:
        Interrupted: SIGINT / SIGTERM stopped the run (after a checkpoint, with a run folder).
    """
    # ---- setup
    data = load_data(cfg)
    public_x, shards, (val_x, val_y) = split_data(cfg, data)
    workers = [Worker(cfg, i, shards[i], data.n_classes, data.input_shape) for i in comm.local]
    method = METHOD_CLASSES[cfg.method](cfg, workers, comm, public_x, data.n_classes)
    simulated = isinstance(comm, SimCommunicator)
    link = LinkModel(parse_bandwidth(cfg.link_bandwidth), cfg.link_latency)
    if simulated and cfg.method == "async-sgd":
        init = build_model(cfg, 0, data.input_shape, data.n_classes)
        comm.server = ParameterServer(torch.nn.utils.parameters_to_vector(init.parameters()).detach(),
                                      cfg.optimizer, cfg.lr, cfg.weight_decay)
    start, elapsed, cpu = run.start, 0.0, 0.0
    loss_sums = [0.0] * len(workers)
    n_losses = 0
    # ---- resume
    if start:
        for i, worker in enumerate(workers):
            state = _load_part(run, f"worker_{worker.index}.pt")
            worker.load_state_dict(state["worker"])
            method.load_state_dict(i, state["method"])
            comm.sent[i], comm.received[i] = int(state["sent"]), int(state["received"])
            # absent from checkpoints written before the network model: nothing was priced then
            comm.link_messages[i] = int(state.get("link_messages", 0))
            comm.link_bytes[i] = float(state.get("link_bytes", 0))
            elapsed, loss_sums[i], n_losses = state["elapsed"], state["loss_sum"], state["n_losses"]
            cpu = state.get("cpu", elapsed)
        if simulated and comm.server is not None:
            state = _load_part(run, "server.pt")
            comm.server.load_state_dict(state["server"])
            if "comm" in state:  # absent when the checkpoint was written by --mode processes
                comm.load_state_dict(state["comm"])
    own_logger = comm.is_logger and logger is None
    if own_logger:
        logger = RunLogger(run.path, tensorboard=run.tensorboard, resume_step=start or None)
    saves = set(checkpoint_steps(cfg, run))
    bar = progress(total=cfg.steps, desc=f"exchange {cfg.method}", enabled=cfg.run.progress and comm.is_logger)
    bar.update(start)

    def save(step: int, signum: int) -> int:
        """Write this process's parts; returns the signal any process was stopped by (0: none)."""
        for i, w in enumerate(workers):
            _save_part(run, step, f"worker_{w.index}.pt",
                       {"worker": w.state_dict(), "method": method.state_dict(i), "sent": comm.sent[i],
                        "received": comm.received[i], "link_messages": comm.link_messages[i],
                        "link_bytes": comm.link_bytes[i], "elapsed": elapsed, "cpu": cpu, "loss_sum": loss_sums[i],
                        "n_losses": n_losses})
        if simulated and comm.server is not None:
            _save_part(run, step, "server.pt", {"server": comm.server.state_dict(), "comm": comm.state_dict()})
        signum = comm.agree(signum)  # every part is written before the pointer moves
        if comm.is_logger:
            _publish(run, step)
        return signum

    # ---- train
    try:
        with stop_on_signals() as stop:
            tick, cpu_tick = time.perf_counter(), time.process_time()
            for step in range(start, cfg.steps):
                comm.began(step)
                _maybe_fail(cfg, comm.local, step, simulated)
                batches = [w.next_batch(cfg.batch_size) for w in workers]
                for i, loss in enumerate(method.step(step, batches)):
                    loss_sums[i] += loss
                n_losses += 1
                done = step + 1
                last = done == cfg.steps
                evaluate = done % cfg.eval_every == 0 or last
                # a signal stops the run after this step (simulated) or at the next evaluation or
                # checkpoint, where the processes agree on it; a run at its last step just ends
                signum = 0 if last else stop.signum or 0
                if not (evaluate or done in saves or (simulated and signum)):
                    continue
                elapsed += time.perf_counter() - tick  # wall time excludes evaluation and checkpoints
                # CPU time: what other processes on a shared machine do cannot inflate it, and it
                # leaves out waiting on peers (--mode processes), unlike the wall time
                cpu += time.process_time() - cpu_tick
                # ---- evaluate and log
                if evaluate:
                    mine = []
                    for i, w in enumerate(workers):
                        row = {"test_acc": accuracy(w.model, data.x_test, data.y_test),
                               "train_loss": loss_sums[i] / max(n_losses, 1), "sent": comm.sent[i],
                               "received": comm.received[i], "link_messages": comm.link_messages[i],
                               "link_bytes": comm.link_bytes[i], **method.extra_metrics(i)}
                        if cfg.val_size:
                            row["val_acc"] = accuracy(w.model, val_x, val_y)
                        mine.append(row)
                    gathered = comm.gather([(mine, signum)])
                    rows = [r for per_process, _ in gathered for r in per_process]
                    signum = max(s for _, s in gathered)
                    loss_sums, n_losses = [0.0] * len(workers), 0
                    if logger is not None:
                        # workers compute in parallel: a simulated one took 1/N of this process's CPU time
                        logger.log(done, _aggregate(rows, elapsed, cpu / len(workers), link))
                    bar.update(done - bar.n)
                # ---- checkpoint, and stop after SIGINT / SIGTERM
                if signum and done not in saves:
                    comm.stop_server()  # async-sgd: the server stops after this step's gradients
                if done in saves or (signum and run.path is not None):
                    signum = save(done, signum)
                if signum:
                    raise Interrupted(signum, done, run.path / CHECKPOINTS / LATEST if run.path else None)
                tick, cpu_tick = time.perf_counter(), time.process_time()
        # ---- save (inside the try: the logger closes either way)
        if models_dir is not None:
            for w in workers:
                save_checkpoint(models_dir / f"model_worker_{w.index}.pt", w.model.state_dict())
        comm.barrier()
        if logger is None:
            return None
        result = Result(final={k: v for k, v in logger.rows[-1].items() if k != "step"} if logger.rows else {},
                        history=logger.rows, run_dir=run.path,
                        extras={"models": [w.model for w in workers] if simulated else None,
                                "staleness": getattr(method, "staleness", None), "run_id": run.run_id})
        logger.write_json("final.json", result.final)
        if run.path is not None and result.history:
            plot_results(run.path, {cfg.method: result})
        return result
    finally:
        bar.close()
        if own_logger:  # also on a crash: flush TensorBoard, write the CSV so far
            logger.close()


def run_simulated(cfg: Config) -> Result:
    """Every worker (and async-sgd's parameter server) in this process."""
    folder, run = open_folder(cfg)
    with folder:
        comm = SimCommunicator(cfg.workers, cfg.async_order, cfg.seed)
        threads = torch_threads(cfg.threads)
        try:
            return run_workers(cfg, comm, run, folder.logger, run.path)
        finally:
            torch.set_num_threads(threads)


def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """``model``'s accuracy on ``(x, y)``: the argmax of its scores (in the model's current mode)."""
    with torch.no_grad():
        return (model(x).argmax(1) == y).float().mean().item()


def sim_time(compute_time: float, link_messages: float, link_bytes: float, link: LinkModel) -> float:
    """Simulated wall time: one worker's compute time (CPU time of its training steps; with
    ``--threads 1``, the default, one core's) plus its communication priced by the network model
    (:class:`~.comm.LinkModel`; compute and communication do not overlap)."""
    return compute_time + link.seconds(link_messages, link_bytes)


def _aggregate(rows: list[dict[str, float]], elapsed: float, compute_time: float,
               link: LinkModel) -> dict[str, float]:
    accs = [r["test_acc"] for r in rows]
    messages, path = max(r["link_messages"] for r in rows), max(r["link_bytes"] for r in rows)
    out = {"test_acc": sum(accs) / len(accs), "test_acc_min": min(accs), "test_acc_max": max(accs),
           "train_loss": sum(r["train_loss"] for r in rows) / len(rows),
           "bytes_sent": sum(r["sent"] for r in rows), "bytes_received": sum(r["received"] for r in rows),
           "wall_time": elapsed, "compute_time": compute_time, "link_messages": messages, "link_bytes": path,
           "sim_time": sim_time(compute_time, messages, path, link)}
    if "val_acc" in rows[0]:
        out["val_acc"] = sum(r["val_acc"] for r in rows) / len(rows)
    if "staleness" in rows[0]:
        out["staleness"] = sum(r["staleness"] for r in rows) / len(rows)
    out.update({f"test_acc_worker_{i}": a for i, a in enumerate(accs)})
    return out
