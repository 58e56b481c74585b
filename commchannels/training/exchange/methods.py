"""Workers and the exchange methods, each written once against a :class:`Communicator`.

A method's ``step`` trains every local worker for one step on its batch; all communication goes
through the communicator, so the same code runs simulated (all workers here) or distributed.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from commchannels.agents.convnets import build_classifier
from commchannels.seeding import torch_generator
from commchannels.training.exchange.codec import TensorSpec, decode, encode, message_specs
from commchannels.training.exchange.comm import Communicator
from commchannels.training.exchange.config import DDP_HOOKS, SHARED_INIT, Config
from commchannels.training.exchange.ddp import gradient_sync
from commchannels.training.exchange.server import make_optimizer

Batch = tuple[torch.Tensor, torch.Tensor]


def build_model(cfg: Config, index: int, input_shape: tuple[int, ...], n_classes: int,
                shared: bool | None = None) -> nn.Module:
    """Worker ``index``'s model; shared-init methods give every worker the same initialisation.

    Initialisation draws from a forked global RNG, so callers' global state is left untouched.
    """
    shared = cfg.method in SHARED_INIT if shared is None else shared
    seed = cfg.seed if shared else cfg.seed + 1000 * (index + 1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_classifier(cfg.model, input_shape, n_classes, cfg.hidden, cfg.channels)


class Worker:
    """One worker: a model, its optimiser, its data shard and its own batch generator.

    ``forward`` is the module a training step calls: the model, or its DDP wrapper.
    """

    def __init__(self, cfg: Config, index: int, shard: Batch, n_classes: int, input_shape: tuple[int, ...]) -> None:
        self.index = index
        self.x, self.y = shard
        self.input_shape = input_shape
        self.model = build_model(cfg, index, input_shape, n_classes)
        self.forward: nn.Module = self.model
        self.params = list(self.model.parameters())
        self.optimizer = make_optimizer(self.params, cfg.optimizer, cfg.lr, cfg.weight_decay)
        self.generator = torch_generator(cfg.seed * 7_919 + index + 1)

    def next_batch(self, size: int) -> Batch:
        idx = torch.randint(len(self.y), (size,), generator=self.generator)
        return self.x[idx], self.y[idx]

    def flat_params(self) -> torch.Tensor:
        return nn.utils.parameters_to_vector(self.params).detach().clone()

    def set_flat_params(self, flat: torch.Tensor) -> None:
        """Copy ``flat`` into the parameters (never aliasing it: diloco keeps its own copy)."""
        offset = 0
        with torch.no_grad():
            for p in self.params:
                p.copy_(flat[offset:offset + p.numel()].view_as(p))
                offset += p.numel()

    def flat_grad(self) -> torch.Tensor:
        return torch.cat([p.grad.reshape(-1) for p in self.params])

    def set_flat_grad(self, flat: torch.Tensor) -> None:
        offset = 0
        for p in self.params:
            p.grad = flat[offset:offset + p.numel()].view_as(p).clone()
            offset += p.numel()

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])


class Method:
    """Base: independent training (no communication), the lower bound."""

    def __init__(self, cfg: Config, workers: list[Worker], comm: Communicator,
                 public_x: torch.Tensor, n_classes: int) -> None:
        self.cfg, self.workers, self.comm = cfg, workers, comm
        self.public_x, self.n_classes = public_x, n_classes

    def loss(self, i: int, batch: Batch) -> torch.Tensor:
        x, y = batch
        return F.cross_entropy(self.workers[i].forward(x), y)

    def backward(self, batches: list[Batch]) -> list[float]:
        losses = []
        for i, (worker, batch) in enumerate(zip(self.workers, batches)):
            worker.optimizer.zero_grad(set_to_none=True)
            loss = self.loss(i, batch)
            loss.backward()
            losses.append(loss.item())
        return losses

    def step(self, step: int, batches: list[Batch]) -> list[float]:
        losses = self.backward(batches)
        for worker in self.workers:
            worker.optimizer.step()
        return losses

    def extra_metrics(self, i: int) -> dict[str, float]:
        return {}

    def state_dict(self, i: int) -> dict[str, Any]:
        return {}

    def load_state_dict(self, i: int, state: dict[str, Any]) -> None:
        pass


class SyncSGD(Method):
    """Data parallelism as ``DistributedDataParallel`` runs it: gradients averaged every step by a
    DDP communication hook (plain all-reduce for sync-sgd, float16 for fp16-compress, PowerSGD for
    powersgd; see :mod:`.ddp`), during the backward pass on torch.distributed, after it when simulated."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        cfg = self.cfg
        self.sync = gradient_sync(self.comm, self.workers, DDP_HOOKS[cfg.method], cfg.powersgd_rank,
                                  cfg.powersgd_start, cfg.seed)

    def backward(self, batches):
        with self.comm.waiting():  # DDP waits on the peers inside the backward pass
            return super().backward(batches)

    def step(self, step, batches):
        losses = self.backward(batches)
        self.sync.reduce()
        for worker in self.workers:
            worker.optimizer.step()
        return losses

    def state_dict(self, i):
        return {"sync": self.sync.state_dict(i)}

    def load_state_dict(self, i, state):
        if "sync" in state:  # sync-sgd checkpoints written before the DDP hooks hold no state
            self.sync.load_state_dict(i, state["sync"])


class DiLoCo(Method):
    """DiLoCo (Douillard et al. 2023, arXiv 2311.08105): ``exchange_every`` (H) inner steps of each
    worker's optimiser (AdamW in the paper), then an outer step: the parameter deltas
    ``global - local`` are averaged and applied to the shared global parameters by SGD with Nesterov
    momentum; every worker restarts from them. With ``outer_lr=1`` and ``outer_momentum=0`` the
    outer step sets the global parameters to the workers' average: local-sgd."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        momentum = self.cfg.outer_momentum
        self.outer = [nn.Parameter(w.flat_params()) for w in self.workers]
        self.outer_optimizers = [torch.optim.SGD([p], lr=self.cfg.outer_lr, momentum=momentum, nesterov=momentum > 0)
                                 for p in self.outer]

    def step(self, step, batches):
        losses = super().step(step, batches)
        if (step + 1) % self.cfg.exchange_every == 0:
            deltas = self.comm.all_reduce_mean([p.detach() - w.flat_params() for p, w in zip(self.outer, self.workers)])
            for param, optimizer, delta, worker in zip(self.outer, self.outer_optimizers, deltas, self.workers):
                param.grad = delta
                optimizer.step()
                worker.set_flat_params(param.detach())
        return losses

    def state_dict(self, i):
        return {"outer": self.outer[i].detach().clone(), "outer_optimizer": self.outer_optimizers[i].state_dict()}

    def load_state_dict(self, i, state):
        with torch.no_grad():
            self.outer[i].copy_(state["outer"])
        self.outer_optimizers[i].load_state_dict(state["outer_optimizer"])


class LocalSGD(Method):
    """Independent steps, parameters averaged every ``exchange_every`` steps (Stich 2019)."""

    def step(self, step, batches):
        losses = super().step(step, batches)
        if (step + 1) % self.cfg.exchange_every == 0:
            means = self.comm.all_reduce_mean([w.flat_params() for w in self.workers])
            for worker, mean in zip(self.workers, means):
                worker.set_flat_params(mean)
        return losses


class AsyncSGD(Method):
    """Each worker pushes its gradient to a parameter server and pulls the fresh parameters."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.versions = [0] * len(self.workers)
        self.staleness: list[list[int]] = [[] for _ in self.workers]

    def step(self, step, batches):
        losses = self.backward(batches)
        replies = self.comm.push_pull(self.versions, [w.flat_grad() for w in self.workers])
        for i, (version, staleness, params) in enumerate(replies):
            self.workers[i].set_flat_params(params)
            self.versions[i] = version
            self.staleness[i].append(staleness)
        return losses

    def extra_metrics(self, i):
        recent = self.staleness[i][-self.cfg.eval_every:]
        return {"staleness": sum(recent) / max(len(recent), 1)}

    def state_dict(self, i):
        return {"version": self.versions[i], "staleness": torch.tensor(self.staleness[i])}

    def load_state_dict(self, i, state):
        self.versions[i] = int(state["version"])
        self.staleness[i] = state["staleness"].tolist()


class Codistill(Method):
    """Online distillation (Anil et al. 2018, arXiv 1804.03235) in two forms.

    * ``predictions``: every ``exchange_every`` steps workers exchange class probabilities on a
      shared public batch (or on each worker's own batch); until the next exchange each adds
      ``alpha * T^2 * KL(peers || self)`` on the exchanged inputs.
    * ``checkpoints`` (the paper's form): every ``exchange_every`` steps each worker sends its
      parameters to its listeners; until the next exchange each distils on its own batch toward
      the average prediction of its peers' stale models, computed locally.
    """

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        n, k = self.comm.n_workers, self.cfg.n_peers
        # Worker i listens to the next k workers on a ring and so talks to the previous k.
        self.peers = {i: [(i + d) % n for d in range(1, k + 1)] for i in self.comm.local}
        self.listeners = {i: [(i - d) % n for d in range(1, k + 1)] for i in self.comm.local}
        # The public batch is drawn from a generator every worker seeds alike: no indices sent.
        self.public_generator = torch_generator(self.cfg.seed + 104_729)
        self.cache: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * len(self.workers)
        self.teachers: list[list[nn.Module]] = [[] for _ in self.workers]  # checkpoints form

    def _predict(self, i: int, x: torch.Tensor) -> list[torch.Tensor]:
        with torch.no_grad():
            probs = F.softmax(self.workers[i].model(x) / self.cfg.temperature, dim=1)
        return encode(probs, self.cfg.topk, self.cfg.bits)

    def _specs(self, batch: int) -> list[TensorSpec]:
        return message_specs(batch, self.n_classes, self.cfg.topk, self.cfg.bits)

    def _public_batch(self) -> torch.Tensor:
        """A public batch, augmented alike on every worker (all draws from the shared generator)."""
        cfg, gen = self.cfg, self.public_generator
        x = self.public_x[torch.randint(len(self.public_x), (cfg.public_batch,), generator=gen)]
        if cfg.public_shift:
            shape = self.workers[0].input_shape if self.workers else (x.shape[1],)
            length = shape[-1]
            shifts = torch.randint(-cfg.public_shift, cfg.public_shift + 1, (len(x),), generator=gen)
            rolled = x.reshape(len(x), -1, length)
            index = (torch.arange(length) - shifts[:, None]) % length
            x = rolled.gather(2, index[:, None, :].expand_as(rolled)).reshape(len(x), -1)
        if cfg.public_noise:
            x = x + cfg.public_noise * torch.randn(x.shape, generator=gen)
        return x

    def _exchange_checkpoints(self) -> None:
        local, comm = self.comm.local, self.comm
        flats = [w.flat_params() for w in self.workers]
        spec = [TensorSpec(tuple(flats[0].shape), flats[0].dtype)] if flats else []
        received = comm.exchange([{dst: [flats[i]] for dst in self.listeners[w]} for i, w in enumerate(local)],
                                 [{src: spec for src in self.peers[w]} for w in local])
        for i, w in enumerate(local):
            if not self.teachers[i]:
                worker = self.workers[i]
                self.teachers[i] = [build_model(self.cfg, src, worker.input_shape, self.n_classes, shared=False)
                                    for src in self.peers[w]]
            for model, src in zip(self.teachers[i], self.peers[w]):
                nn.utils.vector_to_parameters(received[i][src][0], model.parameters())

    def _exchange(self, batches: list[Batch]) -> None:
        if self.cfg.codistill_form == "checkpoints":
            self._exchange_checkpoints()
            return
        local, comm, cfg = self.comm.local, self.comm, self.cfg
        if cfg.distill_on == "public":
            inputs = [self._public_batch()] * len(local)
            messages = [self._predict(i, inputs[i]) for i in range(len(local))]
            outgoing = [{dst: messages[i] for dst in self.listeners[w]} for i, w in enumerate(local)]
        else:
            # Own batches: send my inputs to my peers, who answer with their predictions on them.
            inputs = [x for x, _ in batches]
            spec = [TensorSpec(tuple(inputs[0].shape), inputs[0].dtype)]
            got = comm.exchange([{dst: [inputs[i]] for dst in self.peers[w]} for i, w in enumerate(local)],
                                [{src: spec for src in self.listeners[w]} for w in local])
            outgoing = [{src: self._predict(i, m[0]) for src, m in got[i].items()} for i in range(len(local))]
        incoming = [{src: self._specs(len(inputs[0])) for src in self.peers[w]} for w in local]
        received = comm.exchange(outgoing, incoming)
        for i in range(len(local)):
            probs = [decode(m, len(inputs[i]), self.n_classes, cfg.topk, cfg.bits) for m in received[i].values()]
            self.cache[i] = (inputs[i], torch.stack(probs).mean(0))

    def _target(self, i: int, batch: Batch) -> tuple[torch.Tensor | None, torch.Tensor] | None:
        """Inputs to distil on (``None``: the worker's own batch) and the peers' averaged
        probabilities on them (``None``: nothing yet)."""
        if self.teachers[i]:
            with torch.no_grad():
                probs = [F.softmax(m(batch[0]) / self.cfg.temperature, dim=1) for m in self.teachers[i]]
            return None, torch.stack(probs).mean(0)
        if self.cache[i] is None:
            return None
        x, target = self.cache[i]
        if 0 < self.cfg.distill_batch < len(x):
            idx = torch.randint(len(x), (self.cfg.distill_batch,), generator=self.workers[i].generator)
            x, target = x[idx], target[idx]
        return x, target

    def loss(self, i, batch):
        pair = self._target(i, batch) if self.cfg.alpha > 0 else None
        if pair is None:
            return super().loss(i, batch)
        (x, y), (distill_x, target) = batch, pair
        # One forward pass over the labelled and the distilled inputs: a step costs one batched
        # call, not two (the models have no batch statistics, so the outputs are the same).
        logits = self.workers[i].forward(x if distill_x is None else torch.cat([x, distill_x]))
        distill_logits = logits if distill_x is None else logits[len(x):]
        t = self.cfg.temperature
        log_q = F.log_softmax(distill_logits / t, dim=1)
        return (F.cross_entropy(logits[:len(x)], y)
                + self.cfg.alpha * t * t * F.kl_div(log_q, target, reduction="batchmean"))

    def step(self, step, batches):
        after = step - self.cfg.burn_in
        if after >= 0 and after % self.cfg.exchange_every == 0 and self.comm.n_workers > 1:
            self._exchange(batches)
        return super().step(step, batches)

    def state_dict(self, i):
        state = {"public_generator": self.public_generator.get_state()}
        if self.cache[i] is not None:
            state["cache_x"], state["cache_target"] = self.cache[i]
        if self.teachers[i]:
            state["teachers"] = torch.stack([nn.utils.parameters_to_vector(m.parameters()).detach()
                                             for m in self.teachers[i]])
        return state

    def load_state_dict(self, i, state):
        self.public_generator.set_state(state["public_generator"])
        if "cache_x" in state:
            self.cache[i] = (state["cache_x"], state["cache_target"])
        if "teachers" in state:
            worker, w = self.workers[i], self.comm.local[i]
            self.teachers[i] = [build_model(self.cfg, src, worker.input_shape, self.n_classes, shared=False)
                                for src in self.peers[w]]
            for model, flat in zip(self.teachers[i], state["teachers"]):
                nn.utils.vector_to_parameters(flat, model.parameters())


METHOD_CLASSES: dict[str, type[Method]] = {
    "independent": Method, "sync-sgd": SyncSGD, "fp16-compress": SyncSGD, "powersgd": SyncSGD,
    "async-sgd": AsyncSGD, "local-sgd": LocalSGD, "diloco": DiLoCo, "codistill": Codistill,
}
