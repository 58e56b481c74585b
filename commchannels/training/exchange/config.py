"""The configuration of one output-exchange run (every method, both execution modes)."""

from __future__ import annotations

from dataclasses import dataclass

from commchannels.config import check_choice, check_range, option
from commchannels.data import DATASETS

METHODS = ("independent", "sync-sgd", "async-sgd", "local-sgd", "codistill")
MODES = ("simulated", "processes")
BITS = (32, 16, 8, 4)
# Methods whose workers start from one shared initialisation (they train one model together);
# the others start from different ones, which codistillation needs for diversity (Anil et al.).
SHARED_INIT = ("sync-sgd", "async-sgd", "local-sgd")


@dataclass(frozen=True)
class Config:
    """Options of ``commchannels train exchange``."""

    method: str = option("codistill", "what the workers exchange: nothing, gradients (sync or async), "
                         "parameters every H steps, or predictions (codistillation); 'all' runs each "
                         "method and writes a comparison", choices=(*METHODS, "all"))
    workers: int = option(4, "number of workers, each with its own model and data shard")
    mode: str = option("simulated", "run the workers in this process (simulated) or as one process "
                       "each on 127.0.0.1 (processes); torchrun's RANK/WORLD_SIZE override this",
                       choices=MODES)
    dataset: str = option("mnist1d", "data set", choices=DATASETS)
    data_path: str | None = option(None, "folder of MNIST IDX files (dataset=mnist)")
    train_size: int = option(0, "use only this many training examples (0: all)")
    hidden: tuple[int, ...] = option((256, 256), "hidden layer sizes of each worker's MLP")
    steps: int = option(3000, "optimisation steps per worker")
    batch_size: int = option(32, "examples per worker per step")
    optimizer: str = option("adam", "optimiser of each worker (of the server for async-sgd)",
                            choices=("adam", "sgd"))
    lr: float = option(1e-3, "learning rate")
    exchange_every: int = option(10, "H: steps between parameter averages (local-sgd) or "
                                 "prediction exchanges (codistill)")
    alpha: float = option(5.0, "weight of the distillation term (codistill)")
    temperature: float = option(1.0, "softmax temperature of the exchanged predictions (codistill)")
    distill_on: str = option("public", "predictions on a shared public batch (no inputs sent) or on "
                             "each worker's own batch (its inputs are sent to its peers)",
                             choices=("public", "own"))
    public_pool: str = option("train", "where public batches come from (codistill): the inputs of "
                              "every shard, labels unused, as when workers share a data store "
                              "(Anil et al.), or only the held-out public_size examples",
                              choices=("train", "heldout"))
    public_size: int = option(0, "training examples held out of every shard as an unlabelled "
                              "public pool (for every method, so shards are equal across methods)")
    public_batch: int = option(500, "examples per prediction exchange (codistill)")
    distill_batch: int = option(64, "exchanged examples each worker distils on per step, drawn "
                                "from the last exchange (codistill; 0: all of them)")
    peers: int = option(0, "peers each worker distils from (codistill; 0: all other workers)")
    topk: int = option(0, "send only the k largest probabilities and their classes (0: all)")
    bits: int = option(8, "bits per sent probability: 32 (float32), 16 (float16), 8 or 4 "
                       "(uniform quantisation of [0, 1])", choices=BITS)
    burn_in: int = option(200, "steps before distillation starts (codistill)")
    async_order: str = option("round-robin", "simulated async-sgd: order in which gradients "
                              "reach the server each round (a seeded shuffle varies staleness)",
                              choices=("round-robin", "shuffle"))
    eval_every: int = option(100, "steps between test evaluations")
    checkpoint_every: int = option(0, "steps between checkpoints (0: never)")
    resume: bool = option(False, "continue from the latest checkpoint in run_dir")
    run_dir: str | None = option(None, "run folder (metrics, plots, checkpoints, models)")
    threads: int = option(1, "torch CPU threads per process (0: torch's default); small models "
                          "run fastest on one")
    tensorboard: bool = option(True, "also write TensorBoard logs in run_dir")
    timeout: float = option(60.0, "seconds a worker waits for its peers before failing")
    seed: int = option(0, "seed of data shards, initialisation and batches")
    inject_fault: str = option("", "testing only: 'WORKER:STEP:raise|exit|hang' makes that worker "
                               "fail at that step")

    def __post_init__(self) -> None:
        check_choice("method", self.method, (*METHODS, "all"))
        check_choice("mode", self.mode, MODES)
        check_choice("dataset", self.dataset, DATASETS)
        check_choice("optimizer", self.optimizer, ("adam", "sgd"))
        check_choice("distill_on", self.distill_on, ("public", "own"))
        check_choice("public_pool", self.public_pool, ("train", "heldout"))
        check_choice("bits", self.bits, BITS)
        check_choice("async_order", self.async_order, ("round-robin", "shuffle"))
        check_range("workers", self.workers, 1)
        for name in ("steps", "batch_size", "exchange_every", "public_batch", "eval_every"):
            check_range(name, getattr(self, name), 1)
        for name in ("threads", "train_size", "public_size", "distill_batch", "peers", "topk",
                     "burn_in", "checkpoint_every"):
            check_range(name, getattr(self, name), 0)
        check_range("alpha", self.alpha, 0.0)
        if not self.lr > 0:
            raise ValueError(f"lr={self.lr!r} is out of range; expected a value > 0")
        if not self.temperature > 0:
            raise ValueError(f"temperature={self.temperature!r} is out of range; expected a value > 0")
        if not self.timeout > 0:
            raise ValueError(f"timeout={self.timeout!r} is out of range; expected a value > 0")
        if any(h < 1 for h in self.hidden):
            raise ValueError(f"hidden={self.hidden!r} is not allowed; expected positive sizes")
        if self.peers > self.workers - 1:
            raise ValueError(f"peers={self.peers} is out of range; expected at most workers - 1 = "
                             f"{self.workers - 1} (0 means all)")
        if self.public_pool == "heldout" and self.public_size < 1:
            raise ValueError("public_size=0 is not allowed with public_pool='heldout'; expected >= 1")
        if self.resume and self.run_dir is None:
            raise ValueError("resume=True needs run_dir, the folder holding the checkpoints")
        if self.checkpoint_every and self.run_dir is None:
            raise ValueError(f"checkpoint_every={self.checkpoint_every} needs run_dir, the folder "
                             "for the checkpoints")
        if self.inject_fault:
            parse_fault(self.inject_fault)

    @property
    def n_peers(self) -> int:
        """Number of peers each codistilling worker listens to."""
        return self.peers or self.workers - 1

    @property
    def world_size(self) -> int:
        """Processes in multi-process mode: the workers, plus a parameter server for async-sgd."""
        return self.workers + (self.method == "async-sgd")


def parse_fault(text: str) -> tuple[int, int, str]:
    """Parse ``inject_fault`` (``'WORKER:STEP:KIND'``) into ``(worker, step, kind)``."""
    parts = text.split(":")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit() \
            or parts[2] not in ("raise", "exit", "hang"):
        raise ValueError(f"inject_fault={text!r} is not allowed; expected 'WORKER:STEP:KIND' with "
                         "KIND one of ['raise', 'exit', 'hang']")
    return int(parts[0]), int(parts[1]), parts[2]
