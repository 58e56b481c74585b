"""Workers and the five exchange methods, each written once against a :class:`Communicator`.

A method's ``step`` trains every local worker for one step on its batch; all communication goes
through the communicator, so the same code runs simulated (all workers here) or distributed.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from commchannels.agents.classifiers import MLPClassifier
from commchannels.seeding import torch_generator
from commchannels.training.exchange.codec import TensorSpec, decode, encode, message_specs
from commchannels.training.exchange.comm import Communicator
from commchannels.training.exchange.config import SHARED_INIT, Config
from commchannels.training.exchange.server import make_optimizer

Batch = tuple[torch.Tensor, torch.Tensor]


def build_model(cfg: Config, index: int, n_features: int, n_classes: int) -> MLPClassifier:
    """Worker ``index``'s model; shared-init methods give every worker the same initialisation.

    Initialisation draws from a forked global RNG, so callers' global state is left untouched.
    """
    seed = cfg.seed if cfg.method in SHARED_INIT else cfg.seed + 1000 * (index + 1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MLPClassifier(n_features, n_classes, cfg.hidden)


class Worker:
    """One worker: a model, its optimiser, its data shard and its own batch generator."""

    def __init__(self, cfg: Config, index: int, shard: Batch, n_classes: int) -> None:
        self.index = index
        self.x, self.y = shard
        self.model = build_model(cfg, index, self.x.shape[1], n_classes)
        self.params = list(self.model.parameters())
        self.optimizer = make_optimizer(self.params, cfg.optimizer, cfg.lr)
        self.generator = torch_generator(cfg.seed * 7_919 + index + 1)

    def next_batch(self, size: int) -> Batch:
        idx = torch.randint(len(self.y), (size,), generator=self.generator)
        return self.x[idx], self.y[idx]

    def flat_params(self) -> torch.Tensor:
        return nn.utils.parameters_to_vector(self.params).detach().clone()

    def set_flat_params(self, flat: torch.Tensor) -> None:
        nn.utils.vector_to_parameters(flat.to(self.params[0].dtype), self.params)

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
        return F.cross_entropy(self.workers[i].model(x), y)

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
    """Data parallelism: gradients averaged across all workers every step."""

    def step(self, step, batches):
        losses = self.backward(batches)
        grads = self.comm.all_reduce_mean([w.flat_grad() for w in self.workers])
        for worker, grad in zip(self.workers, grads):
            worker.set_flat_grad(grad)
            worker.optimizer.step()
        return losses


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
    """Online distillation (Anil et al. 2018): every ``exchange_every`` steps workers exchange
    predictions; until the next exchange each adds ``alpha * T^2 * KL(peers || self)`` on the
    exchanged inputs, pulling it toward its peers' (increasingly stale) predictions."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        n, k = self.comm.n_workers, self.cfg.n_peers
        # Worker i listens to the next k workers on a ring and so talks to the previous k.
        self.peers = {i: [(i + d) % n for d in range(1, k + 1)] for i in self.comm.local}
        self.listeners = {i: [(i - d) % n for d in range(1, k + 1)] for i in self.comm.local}
        # The public batch is drawn from a generator every worker seeds alike: no indices sent.
        self.public_generator = torch_generator(self.cfg.seed + 104_729)
        self.cache: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * len(self.workers)

    def _predict(self, i: int, x: torch.Tensor) -> list[torch.Tensor]:
        with torch.no_grad():
            probs = F.softmax(self.workers[i].model(x) / self.cfg.temperature, dim=1)
        return encode(probs, self.cfg.topk, self.cfg.bits)

    def _specs(self, batch: int) -> list[TensorSpec]:
        return message_specs(batch, self.n_classes, self.cfg.topk, self.cfg.bits)

    def _exchange(self, batches: list[Batch]) -> None:
        local, comm, cfg = self.comm.local, self.comm, self.cfg
        if cfg.distill_on == "public":
            idx = torch.randint(len(self.public_x), (cfg.public_batch,), generator=self.public_generator)
            inputs = [self.public_x[idx]] * len(local)
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
            probs = [decode(m, self.n_classes, cfg.topk, cfg.bits) for m in received[i].values()]
            self.cache[i] = (inputs[i], torch.stack(probs).mean(0))

    def loss(self, i, batch):
        loss = super().loss(i, batch)
        if self.cache[i] is not None and self.cfg.alpha > 0:
            x, target = self.cache[i]
            if 0 < self.cfg.distill_batch < len(x):
                idx = torch.randint(len(x), (self.cfg.distill_batch,), generator=self.workers[i].generator)
                x, target = x[idx], target[idx]
            t = self.cfg.temperature
            log_q = F.log_softmax(self.workers[i].model(x) / t, dim=1)
            loss = loss + self.cfg.alpha * t * t * F.kl_div(log_q, target, reduction="batchmean")
        return loss

    def step(self, step, batches):
        after = step - self.cfg.burn_in
        if after >= 0 and after % self.cfg.exchange_every == 0 and self.comm.n_workers > 1:
            self._exchange(batches)
        return super().step(step, batches)

    def state_dict(self, i):
        state = {"public_generator": self.public_generator.get_state()}
        if self.cache[i] is not None:
            state["cache_x"], state["cache_target"] = self.cache[i]
        return state

    def load_state_dict(self, i, state):
        self.public_generator.set_state(state["public_generator"])
        if "cache_x" in state:
            self.cache[i] = (state["cache_x"], state["cache_target"])


METHOD_CLASSES: dict[str, type[Method]] = {
    "independent": Method, "sync-sgd": SyncSGD, "async-sgd": AsyncSGD,
    "local-sgd": LocalSGD, "codistill": Codistill,
}
