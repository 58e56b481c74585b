"""Output exchange: codistillation between workers vs synchronous / asynchronous SGD.

``N`` workers, each with its own :class:`~commchannels.agents.classifiers.MLPClassifier`, train
on disjoint shards of a data set (digits, mnist1d, MNIST IDX). What they exchange:

==============  ===============================================================================
method          communication
==============  ===============================================================================
independent     none (the lower bound)
sync-sgd        gradients all-reduced every step (data parallelism)
async-sgd       each gradient pushed to a parameter server, fresh parameters pulled (stale)
local-sgd       parameters averaged every ``exchange_every`` (H) steps
codistill       every H steps, class probabilities (optionally top-k, 16/8/4-bit) on a shared
                public batch or on each worker's own batch; each worker then adds
                ``alpha * T^2 * KL(peers || self)`` (Anil et al. 2018, arXiv 1804.03235)
==============  ===============================================================================

Each method is written once (:mod:`.methods`) against a communicator (:mod:`.comm`) with two
implementations: all workers simulated in one process (fast sweeps, reproducible async
staleness), or one process per worker on ``torch.distributed`` (gloo on CPU, NCCL with one GPU
per process). Every worker's bytes sent and received are counted from the tensors handed to the
communicator (``numel * element_size``; see :mod:`.comm` for the rule).

Usage::

    commchannels train exchange --method codistill --workers 4            # simulated
    commchannels train exchange --method all --run-dir runs/exchange      # compare all methods
    commchannels train exchange --method sync-sgd --workers 4 --mode processes
    torchrun --nproc-per-node 4 -m commchannels train exchange --method sync-sgd --workers 4
    # async-sgd adds a parameter-server process: torchrun --nproc-per-node 5 ... --workers 4
    # several machines (run on each; 2 machines x 4 processes = 8 workers):
    torchrun --nnodes 2 --nproc-per-node 4 --rdzv-backend c10d --rdzv-endpoint HOST0:29500 \
        -m commchannels train exchange --method codistill --workers 8 --run-dir runs/x

Codistillation's public batches come by default from the inputs of every shard (labels stay
with their worker), as when workers read one data store (Anil et al.); ``--public-pool
heldout --public-size M`` restricts them to ``M`` examples held out of every shard.

A run folder holds ``metrics.{jsonl,csv}`` (accuracy, bytes, wall time per evaluation), PNG
plots of accuracy against steps, wall time and bytes, ``model_worker_<i>.pt`` and, with
``--checkpoint-every``, ``checkpoints/`` (``--resume`` continues from the latest).
"""

from __future__ import annotations

from pathlib import Path

import torch

from commchannels.training.exchange.comm import SimCommunicator
from commchannels.training.exchange.config import METHODS, Config
from commchannels.training.exchange.launch import launch, train_torchrun, under_torchrun
from commchannels.training.exchange.loop import load_data, run_workers, split_data
from commchannels.training.exchange.report import (
    compare as _compare,
)
from commchannels.training.exchange.report import (
    format_table,
    plot_results,
    summarize_result,
    summary_rows,
)
from commchannels.training.result import Result

DESCRIPTION = "workers exchange gradients, parameters or predictions (codistillation)"

__all__ = ["DESCRIPTION", "METHODS", "Config", "compare", "format_table", "summarize", "summary_rows",
           "train"]


def _train_one(cfg: Config) -> Result:
    # Fail at once on options that need the data (workers vs examples, batch size).
    split_data(cfg, load_data(cfg))
    if under_torchrun():
        result = train_torchrun(cfg) or Result(final={})  # ranks other than 0 return nothing
    elif cfg.mode == "processes":
        result = launch(cfg)
    else:
        comm = SimCommunicator(cfg.workers, cfg.async_order, cfg.seed)
        threads = torch.get_num_threads()
        torch.set_num_threads(cfg.threads or threads)
        try:
            result = run_workers(cfg, comm, Path(cfg.run_dir) if cfg.run_dir else None)
        finally:
            torch.set_num_threads(threads)
    if cfg.run_dir and result.history:
        plot_results(cfg.run_dir, {cfg.method: result})
    return result


def compare(cfg: Config, methods: tuple[str, ...] = METHODS) -> dict:
    """Run ``methods`` with otherwise equal options and summarise (see :func:`.report.compare`)."""
    return _compare(cfg, _train_one, methods)


def train(cfg: Config) -> Result:
    """Train one method (or every method with ``method='all'``) and return the result."""
    if cfg.method != "all":
        return _train_one(cfg)
    if under_torchrun():
        raise ValueError("method='all' is not allowed under torchrun; expected one method per job")
    out = compare(cfg)
    final = {f"{r['method']}/{k}": v for r in out["rows"] for k, v in r.items() if k != "method"}
    return Result(final=final, history=[], run_dir=Path(cfg.run_dir) if cfg.run_dir else None,
                  extras={"rows": out["rows"], "results": out["results"]})


def summarize(result: Result) -> str:
    """The text the CLI prints at the end of a run."""
    return summarize_result(result)
