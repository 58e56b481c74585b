"""The configuration of one output-exchange run (every method, both execution modes)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from commchannels.agents.convnets import count_parameters
from commchannels.config import MAX_SEED, Options, check_memory, option
from commchannels.data import DATASETS
from commchannels.run_folder import RunOptions
from commchannels.training.threads import THREADS_HELP, check_threads

METHODS = ("independent", "sync-sgd", "fp16-compress", "powersgd", "async-sgd", "local-sgd", "diloco", "codistill")
# Gradient methods: DistributedDataParallel with a communication hook (torch.distributed), or the
# same hook's arithmetic over the simulated all-reduce.
DDP_HOOKS = {"sync-sgd": "allreduce", "fp16-compress": "fp16", "powersgd": "powersgd"}
MODES = ("simulated", "processes")
BITS = (32, 16, 8, 4)
# Methods whose workers start from one shared initialisation (they train one model together);
# the others start from different ones, which codistillation needs for diversity (Anil et al.).
SHARED_INIT = ("sync-sgd", "fp16-compress", "powersgd", "async-sgd", "local-sgd", "diloco")
# Options that may differ between a run and its resumption (besides the run options).
RESUMABLE = ("steps", "timeout", "inject_fault", "mode", "threads")
# The shape of one example of each data set (for the convolutional models and the memory estimate).
DATASET_SHAPES = {"digits": (1, 8, 8), "mnist1d": (1, 40), "mnist": (1, 28, 28)}
BANDWIDTH_UNITS = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}
# (features, classes, examples) of each data set, for the memory estimate made before loading it.
DATASET_SIZES = {"digits": (64, 10, 1797), "mnist1d": (40, 10, 5000), "mnist": (784, 10, 70000)}
PROCESS_BYTES = 250 * 2**20  # a Python process with torch loaded (--mode processes)
BIG = 10**12  # bound of step counts: far beyond any run, small enough for exact float arithmetic


@dataclass(frozen=True)
class Config(Options):
    """Options of ``commchannels train exchange``."""

    method: str = option("codistill", "what the workers exchange: nothing, gradients (sync or async), "
                         "parameters every H steps, or predictions (codistillation); 'all' runs each "
                         "method and writes a comparison", choices=(*METHODS, "all"))
    workers: int = option(4, "number of workers, each with its own model and data shard", low=1, high=4096)
    mode: str = option("simulated", "run the workers in this process (simulated) or as one process "
                       "each on 127.0.0.1 (processes); torchrun's RANK/WORLD_SIZE override this",
                       choices=MODES)
    dataset: str = option("mnist1d", "data set", choices=DATASETS)
    data_path: str | None = option(None, "folder of MNIST IDX files (dataset=mnist)")
    train_size: int = option(0, "use only this many training examples (0: all)", low=0, high=BIG)
    model: str = option("mlp", "each worker's classifier: an MLP, or a small CNN (1-D for mnist1d, 2-D for "
                        "digits and mnist)", choices=("mlp", "cnn"))
    hidden: tuple[int, ...] = option((256, 256), "hidden layer sizes of each worker's MLP", low=1, high=2**24)
    channels: int = option(25, "feature maps of every convolution (model=cnn)", low=1, high=2**16)
    steps: int = option(3000, "optimisation steps per worker", low=1, high=BIG)
    batch_size: int = option(32, "examples per worker per step", low=1, high=10**9)
    optimizer: str = option("adam", "optimiser of each worker (of the server for async-sgd; the inner "
                            "optimiser of diloco, AdamW in its paper)", choices=("adam", "adamw", "sgd"))
    lr: float = option(1e-3, "learning rate", gt=0.0, high=10.0)
    weight_decay: float = option(0.01, "decoupled weight decay of optimizer=adamw", low=0.0, high=10.0)
    exchange_every: int = option(10, "H: steps between parameter averages (local-sgd), outer steps (diloco) "
                                 "or prediction / checkpoint exchanges (codistill)", low=1, high=BIG)
    outer_lr: float = option(0.7, "learning rate of diloco's outer Nesterov SGD on the averaged parameter "
                             "deltas (1 with outer_momentum=0 is local-sgd)", gt=0.0, high=100.0)
    outer_momentum: float = option(0.9, "momentum of diloco's outer Nesterov SGD (0: plain SGD)",
                                   low=0.0, high=0.999)
    powersgd_rank: int = option(1, "rank of PowerSGD's low-rank gradient approximation", low=1, high=2**10)
    powersgd_start: int = option(100, "steps of plain all-reduce before PowerSGD compresses (torch's "
                                 "start_powerSGD_iter)", low=2, high=BIG)
    alpha: float = option(5.0, "weight of the distillation term (codistill)", low=0.0, high=1e6)
    temperature: float = option(1.0, "softmax temperature of the exchanged predictions (codistill)",
                                low=1e-6, high=1e6)
    codistill_form: str = option("predictions", "what codistilling workers exchange: predictions on shared "
                                 "inputs, or their parameters (checkpoints, Anil et al.: each worker then "
                                 "distils on its own batch from its peers' stale models)",
                                 choices=("predictions", "checkpoints"))
    distill_on: str = option("public", "predictions on a shared public batch (no inputs sent) or on "
                             "each worker's own batch (its inputs are sent to its peers)",
                             choices=("public", "own"))
    public_pool: str = option("train", "where public batches come from (codistill): the inputs of "
                              "every shard, labels unused, as when workers share a data store "
                              "(Anil et al.), or only the held-out public_size examples",
                              choices=("train", "heldout"))
    public_size: int = option(0, "training examples held out of every shard as an unlabelled "
                              "public pool (for every method, so shards are equal across methods)",
                              low=0, high=BIG)
    public_noise: float = option(0.0, "std of Gaussian noise added to every public batch (augmentation, "
                                 "the same draw for every worker)", low=0.0, high=1e6)
    public_shift: int = option(0, "public batches: each input circularly shifted along its last axis by "
                               "up to this many positions (augmentation, the same draw for every worker)",
                               low=0, high=10**6)
    public_batch: int = option(500, "examples per prediction exchange (codistill)", low=1, high=10**12)
    distill_batch: int = option(64, "exchanged examples each worker distils on per step, drawn "
                                "from the last exchange (codistill; 0: all of them)", low=0, high=10**12)
    peers: int = option(0, "peers each worker distils from (codistill; 0: all other workers)", low=0)
    topk: int = option(0, "send only the k largest probabilities and their classes (0: all)", low=0,
                       high=2**15)
    bits: int = option(8, "bits per sent probability: 32 (float32), 16 (float16), 8 or 4 "
                       "(uniform quantisation of [0, 1])", choices=BITS)
    burn_in: int = option(200, "steps before distillation starts (codistill)", low=0, high=BIG)
    async_order: str = option("round-robin", "simulated async-sgd: order in which gradients "
                              "reach the server each round (a seeded shuffle varies staleness)",
                              choices=("round-robin", "shuffle"))
    eval_every: int = option(100, "steps between test evaluations", low=1, high=BIG)
    val_size: int = option(0, "training examples held out as a labelled validation split (val_acc in the "
                           "metrics; tune on it, never on test)", low=0, high=BIG)
    link_bandwidth: str = option("1Gbit", "simulated network: each worker's link, in bits per second "
                                 "('100Mbit', '1Gbit', '10Gbit', or a number)")
    link_latency: float = option(0.0, "simulated network: seconds per message", low=0.0, high=1e6)
    threads: int = option(1, THREADS_HELP, low=0)
    timeout: float = option(60.0, "seconds a worker waits for its peers before failing", gt=0.0, high=1e6)
    seed: int = option(0, "seed of data shards, initialisation and batches", low=0, high=MAX_SEED)
    inject_fault: str = option("", "testing only: 'WORKER:STEP:raise|exit|hang' makes that worker "
                               "fail at that step")
    run: RunOptions = option(RunOptions(), "run folder, checkpoints and logging")

    def validate(self) -> None:
        check_threads(self.threads)
        if self.peers > self.workers - 1:
            raise ValueError(f"peers={self.peers} is out of range; expected at most workers - 1 = "
                             f"{self.workers - 1} (0 means all)")
        if self.public_pool == "heldout" and self.public_size < 1:
            raise ValueError("public_size=0 is not allowed with public_pool='heldout'; expected >= 1")
        if self.inject_fault:
            parse_fault(self.inject_fault)
        parse_bandwidth(self.link_bandwidth)
        check_memory(f"workers={self.workers} with model={self.model}, hidden={self.hidden}, "
                     f"channels={self.channels} on {self.dataset}, "
                     f"batch_size={self.batch_size}, public_batch={self.public_batch}, "
                     f"distill_batch={self.distill_batch} (mode={self.mode})", self.memory_estimate())

    @property
    def n_peers(self) -> int:
        """Number of peers each codistilling worker listens to."""
        return self.peers or self.workers - 1

    @property
    def world_size(self) -> int:
        """Processes in multi-process mode: the workers, plus a parameter server for async-sgd."""
        return self.workers + (self.method == "async-sgd")

    def memory_estimate(self) -> float:
        """Rough peak bytes of a run on one machine: every worker's parameters, gradients,
        optimiser state and flat copies; the activations of a step, an evaluation and a
        prediction exchange; the exchanged predictions kept for distillation; the data set
        (one copy per process) and, in processes mode, the processes themselves."""
        features, classes, examples = DATASET_SIZES[self.dataset]
        if self.model == "mlp":
            sizes = [features, *self.hidden, classes]
            params = sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
            width = sum(sizes)
        else:
            params = count_parameters("cnn", DATASET_SHAPES[self.dataset], classes, channels=self.channels)
            width = features + 2 * self.channels * features + classes  # the feature maps of one example
        rows, exchange = self.batch_size, 0
        if self.method in ("codistill", "all"):
            shared = self.public_batch if self.distill_on == "public" else self.batch_size
            rows += self.distill_batch or shared
            # inputs and averaged targets kept, peers' decoded messages, the prediction pass
            exchange = shared * (features + classes * (self.n_peers + 2) + width) * 4
        if self.method in ("codistill", "all") and self.codistill_form == "checkpoints":
            exchange = self.n_peers * params * 4 * 3  # the peers' models, and their parameters as sent
            rows += self.batch_size * self.n_peers
        per_worker = params * 4 * 10 + rows * width * 4 * 3 + exchange  # + diloco / powersgd state
        processes = self.world_size if self.mode == "processes" else 1
        data = examples * (features * 4 + 8) * 3 + examples * width * 4  # copies, evaluation pass
        return self.workers * per_worker + params * 4 * 4 + processes * (data + PROCESS_BYTES)


def parse_fault(text: str) -> tuple[int, int, str]:
    """Parse ``inject_fault`` (``'WORKER:STEP:KIND'``) into ``(worker, step, kind)``."""
    parts = text.split(":")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit() \
            or parts[2] not in ("raise", "exit", "hang"):
        raise ValueError(f"inject_fault={text!r} is not allowed; expected 'WORKER:STEP:KIND' with "
                         "KIND one of ['raise', 'exit', 'hang']")
    return int(parts[0]), int(parts[1]), parts[2]


def parse_bandwidth(text: str) -> float:
    """``link_bandwidth`` in bits per second: ``'100Mbit'``, ``'1Gbit/s'``, ``'10Gbps'``, ``'1e8'``.

    >>> parse_bandwidth("100Mbit"), parse_bandwidth("1 Gbit/s"), parse_bandwidth("2.5e9")
    (100000000.0, 1000000000.0, 2500000000.0)
    """
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMgGtT]?)(?:bit|b)?(?:/s|ps)?\s*",
                         str(text))
    value = float(match.group(1)) * BANDWIDTH_UNITS[match.group(2).lower()] if match else math.nan
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"link_bandwidth={text!r} is not allowed; expected a positive rate in bits per second "
                         "such as '100Mbit', '1Gbit', '10Gbit/s' or '1e9'")
    return value
