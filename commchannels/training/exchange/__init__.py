"""Output exchange: codistillation between workers vs synchronous / asynchronous SGD.

``N`` workers, each with its own classifier (an MLP, or with ``--model cnn`` the small CNN of
:mod:`commchannels.agents.convnets`), train on disjoint shards of a data set (digits, mnist1d,
MNIST IDX). What they exchange:

==============  ===============================================================================
method          communication
==============  ===============================================================================
independent     none (the lower bound)
sync-sgd        gradients all-reduced every step by ``DistributedDataParallel`` (data parallelism)
fp16-compress   the same with torch's ``fp16_compress_hook``: gradients sent as float16
powersgd        the same with torch's ``powerSGD_hook`` (rank ``--powersgd-rank``, error
                feedback, warm start; plain all-reduce for the first ``--powersgd-start`` steps)
async-sgd       each gradient pushed to a parameter server, fresh parameters pulled (stale)
local-sgd       parameters averaged every ``exchange_every`` (H) steps
diloco          H inner steps, then an outer Nesterov step on the averaged parameter deltas
                (Douillard et al. 2023; ``--outer-lr 1 --outer-momentum 0`` is local-sgd)
codistill       every H steps, class probabilities (optionally top-k, 16/8/4-bit) on a shared
                public batch or on each worker's own batch, or (``--codistill-form checkpoints``)
                the parameters, whose predictions each peer computes on its own batch; each
                worker then adds ``alpha * T^2 * KL(peers || self)`` (Anil et al. 2018)
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
heldout --public-size M`` restricts them to ``M`` examples held out of every shard, and
``--public-shift`` / ``--public-noise`` augment them (the same draw on every worker).

Every evaluation row also logs the network model's inputs (``compute_time``: one worker's
compute time, the CPU time of its training steps; ``link_messages`` / ``link_bytes``: the critical path of its
communication) and ``sim_time``, the simulated wall time on the link of ``--link-bandwidth``
and ``--link-latency`` (:mod:`.comm` gives the cost model). ``--val-size`` holds out a labelled
validation split (``val_acc``) to tune on.

A run folder holds ``run.json`` (the run id), ``config.json``, ``metrics.{jsonl,csv}`` (accuracy,
bytes, wall time per evaluation), ``final.json``, PNG plots of accuracy against steps, wall time
and bytes, ``model_worker_<i>.pt`` and ``checkpoints/`` (every ``--checkpoint-every`` steps, at
the end, and when SIGINT / SIGTERM stops the run; ``--resume`` continues from the latest). A
folder holding another run is refused unless ``--resume`` or ``--overwrite`` is given, and is
locked while a run writes it. ``--method all`` keeps each method's run in a subfolder and the
comparison (``summary.{json,csv}``, plots) at the top; ``--resume`` continues it where it stopped.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from commchannels.run_folder import CHECKPOINTS, LATEST, RunFolder
from commchannels.training.exchange.config import METHODS, RESUMABLE, Config
from commchannels.training.exchange.launch import launch, train_torchrun, under_torchrun
from commchannels.training.exchange.loop import load_data, run_simulated, split_data
from commchannels.training.exchange.report import format_table, summarize_result, summary_rows, write_comparison
from commchannels.training.result import Result

DESCRIPTION = "workers exchange gradients, parameters or predictions (codistillation)"

__all__ = ["DESCRIPTION", "METHODS", "Config", "compare", "format_table", "summarize", "summary_rows",
           "train"]


def _train_one(cfg: Config) -> Result:
    # Fail at once on options that need the data (workers vs examples, batch size).
    split_data(cfg, load_data(cfg))
    if under_torchrun():
        return train_torchrun(cfg) or Result(final={})  # ranks other than 0 return nothing
    if cfg.mode == "processes":
        return launch(cfg)
    return run_simulated(cfg)


def _method_config(cfg: Config, method: str, top: Path | None) -> Config:
    """The options of one method's run in a comparison: its own subfolder of ``top``, resumed
    when it holds a checkpoint and the comparison is resumed, restarted when it holds a run that
    stopped before its first checkpoint."""
    if top is None:
        return dataclasses.replace(cfg, method=method)
    sub = top / method
    resume = cfg.run.resume and (sub / CHECKPOINTS / LATEST).is_file()
    overwrite = not resume and sub.is_dir() and any(sub.iterdir())
    run = dataclasses.replace(cfg.run, run_dir=str(sub), resume=resume, overwrite=overwrite)
    return dataclasses.replace(cfg, method=method, run=run)


def compare(cfg: Config, methods: tuple[str, ...] = METHODS) -> dict:
    """Run ``methods`` with otherwise equal options and summarise them.

    The comparison is itself a run (``method='all'``) in ``cfg.run.run_dir``: each method's run
    in ``run_dir/<method>``, ``summary.{json,csv}``, plots and ``final.json`` at the top. Its
    checkpoint lists the finished methods, so ``resume`` continues where it stopped.

    Returns:
        ``{"rows": [summary row per method], "results": {method: Result}, "final": {...}}``.
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"methods={unknown} are not allowed; expected some of {list(METHODS)}")
    top = dataclasses.replace(cfg, method="all")
    options = dataclasses.replace(cfg.run, tensorboard=False)  # the methods' runs log, the comparison does not
    with RunFolder.open(options, top, "exchange", RESUMABLE) as folder:
        if folder.resume_state is None:
            folder.save_checkpoint(0, {"methods": []})  # resumable from the start
        results = {}
        for method in methods:
            results[method] = _train_one(_method_config(cfg, method, folder.path))
            folder.save_checkpoint(len(results), {"methods": list(results)})
        rows = write_comparison(folder.path, results)
        final = {f"{r['method']}/{k}": v for r in rows for k, v in r.items() if k != "method"}
        folder.write_json("final.json", final)
    return {"rows": rows, "results": results, "final": final, "run_id": folder.run_id, "run_dir": folder.path}


def train(cfg: Config) -> Result:
    """Train one method (or every method with ``method='all'``) and return the result."""
    if cfg.method != "all":
        return _train_one(cfg)
    if under_torchrun():
        raise ValueError("method='all' is not allowed under torchrun; expected one method per job")
    out = compare(cfg)
    return Result(final=out["final"], history=[], run_dir=out["run_dir"],
                  extras={"rows": out["rows"], "results": out["results"], "run_id": out["run_id"]})


def summarize(result: Result) -> str:
    """The text the CLI prints at the end of a run."""
    return summarize_result(result)
