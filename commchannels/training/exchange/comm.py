"""Communicators: the only place where workers talk, in one process or over torch.distributed.

Every method is written once against :class:`Communicator`. Its operations take one entry per
*local* worker (all ``N`` workers in the simulated mode, one in the multi-process mode) and
count, per worker, the bytes that cross the wire as ``numel * element_size`` of the tensors
handed over, by one rule shared by both implementations:

* ``all_reduce_mean(t)``: ``t`` sent and the reduced ``t`` received (the payload a worker
  exchanges with a reducer; the collective algorithm's internal relaying, e.g. ring hops, and
  transport framing are not counted, which if anything flatters the all-reduce methods).
* ``exchange``: every tensor sent point-to-point to a peer, and every tensor received.
* ``push_pull`` (parameter server): an int64 version and the gradient sent; an int64
  (version, staleness) pair and the parameters received.

Metric gathering, barriers and stop agreements are bookkeeping, not training communication, and
are not counted.

The same operations feed a network model (:class:`LinkModel`): per worker, the messages and bytes
on its link's critical path, which ``--link-bandwidth`` and ``--link-latency`` turn into
simulated time. An all-reduce of ``B`` bytes among ``N`` workers is priced as a ring all-reduce
(reduce-scatter then all-gather): ``2 (N - 1)`` messages of ``B / N`` bytes each, so
``2 (N - 1) latency + 2 (N - 1) / N * B / bandwidth``. A point-to-point exchange costs a worker
one latency per peer it sends to (or receives from, whichever is more) plus ``max(bytes sent,
bytes received) / bandwidth`` (full-duplex links, every worker on its own link). A parameter-server
push-pull is a request and a reply: ``2 latency + (bytes sent + received) / bandwidth`` (the
server's own link is not modelled as a bottleneck, which flatters async-sgd).

In the multi-process mode a :class:`ProgressBoard` in shared memory records, per process, the
step it last began and whether it is waiting on its peers, so that the launcher can name a
process that stopped making progress (a hung process waits on nobody while its peers wait on it).
"""

from __future__ import annotations

import contextlib
import multiprocessing
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from commchannels.training.exchange.codec import TensorSpec
from commchannels.training.exchange.server import ParameterServer

Message = list[torch.Tensor]
STOP = -1  # the version a worker sends the parameter server instead of a gradient when it stops early


def nbytes(tensors: Sequence[torch.Tensor]) -> int:
    """Bytes on the wire of some tensors."""
    return sum(t.numel() * t.element_size() for t in tensors)


class Communicator:
    """Collective and point-to-point operations over the workers held by this process.

    Attributes:
        n_workers: number of workers in the run.
        local: global indices of the workers held here, in order.
        is_logger: whether this process writes the run folder.
        simulated: whether every worker lives in this process.
        sent / received: bytes sent / received so far, one count per local worker.
        link_messages / link_bytes: messages and bytes on each local worker's critical path so far
            (the network model above).
    """

    simulated = False

    def __init__(self, n_workers: int, local: Sequence[int], is_logger: bool) -> None:
        self.n_workers = n_workers
        self.local = list(local)
        self.is_logger = is_logger
        self.sent = [0] * len(self.local)
        self.received = [0] * len(self.local)
        self.link_messages = [0] * len(self.local)
        self.link_bytes = [0.0] * len(self.local)

    def count_all_reduce(self, i: int, size: int, ops: int = 1) -> None:
        """Count ``ops`` all-reduces of ``size`` bytes in all by local worker ``i``."""
        n = self.n_workers
        self.sent[i] += size
        self.received[i] += size
        self.link_messages[i] += 2 * (n - 1) * ops
        self.link_bytes[i] += 2 * (n - 1) / n * size

    def all_reduce_sum(self, tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Sum one tensor per worker across all workers; returns new tensors."""
        for i, t in enumerate(tensors):
            self.count_all_reduce(i, nbytes([t]))
        return self._all_reduce_sum(list(tensors))

    def all_reduce_mean(self, tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Average one tensor per worker across all workers; returns new tensors."""
        return [t / self.n_workers for t in self.all_reduce_sum(tensors)]

    def waiting(self) -> contextlib.AbstractContextManager:
        """A context in which this process may wait on its peers (DDP's backward, say)."""
        return contextlib.nullcontext()

    def exchange(
        self, outgoing: Sequence[dict[int, Message]], incoming: Sequence[dict[int, list[TensorSpec]]]
    ) -> list[dict[int, Message]]:
        """Point-to-point: ``outgoing[i][dst]`` goes to worker ``dst``; ``incoming[i][src]`` says
        what local worker ``i`` expects from ``src``. Returns ``received[i][src]``."""
        for i in range(len(self.local)):
            sent = sum(nbytes(m) for m in outgoing[i].values())
            received = sum(s.nbytes for specs in incoming[i].values() for s in specs)
            self.sent[i] += sent
            self.received[i] += received
            self.link_messages[i] += max(len(outgoing[i]), len(incoming[i]))
            self.link_bytes[i] += max(sent, received)
        return self._exchange(outgoing, incoming)

    def push_pull(
        self, versions: Sequence[int], grads: Sequence[torch.Tensor]
    ) -> list[tuple[int, int, torch.Tensor]]:
        """Send each worker's gradient (computed at parameter ``version``) to the parameter
        server; returns ``(new_version, staleness, parameters)`` per worker."""
        replies = self._push_pull(list(versions), list(grads))
        for i, (grad, (_, _, params)) in enumerate(zip(grads, replies)):
            self.sent[i] += 8 + nbytes([grad])
            self.received[i] += 16 + nbytes([params])
            self.link_messages[i] += 2
            self.link_bytes[i] += 24 + nbytes([grad]) + nbytes([params])
        return replies

    def gather(self, objects: Sequence[Any]) -> list[Any]:
        """Every worker's object, in worker order (bookkeeping; bytes not counted)."""
        raise NotImplementedError

    def barrier(self) -> None:
        """Wait for every process, the parameter server included."""

    def agree(self, signum: int) -> int:
        """The largest ``signum`` any process passes, the parameter server included (0: no process
        was stopped by a signal); a barrier."""
        return signum

    def stop_server(self) -> None:
        """Tell the parameter server that this worker stops early (async-sgd, multi-process)."""

    def began(self, step: int) -> None:
        """Record that this process began step ``step`` (for the launcher's hang report)."""

    def _all_reduce_sum(self, tensors: list[torch.Tensor]) -> list[torch.Tensor]:
        raise NotImplementedError

    def _exchange(self, outgoing, incoming) -> list[dict[int, Message]]:
        raise NotImplementedError

    def _push_pull(self, versions, grads) -> list[tuple[int, int, torch.Tensor]]:
        raise NotImplementedError


class SimCommunicator(Communicator):
    """All workers in this process; the async parameter server too, with a fixed arrival order
    per round (round-robin, or a shuffle drawn from its own seeded generator)."""

    simulated = True

    def __init__(self, n_workers: int, order: str = "round-robin", seed: int = 0) -> None:
        super().__init__(n_workers, range(n_workers), is_logger=True)
        self.order = order
        self.generator = torch.Generator().manual_seed(seed + 7919)
        self.server: ParameterServer | None = None

    def gather(self, objects):
        return list(objects)

    def _all_reduce_sum(self, tensors):
        total = tensors[0].clone()
        for t in tensors[1:]:
            total += t
        return [total.clone() for _ in tensors]

    def _exchange(self, outgoing, incoming):
        received: list[dict[int, Message]] = [{} for _ in self.local]
        for src, messages in enumerate(outgoing):
            for dst, message in messages.items():
                specs = incoming[dst].get(src)
                got = [TensorSpec(tuple(t.shape), t.dtype) for t in message]
                if specs != got:
                    raise RuntimeError(f"worker {dst} expected {specs} from worker {src}, got {got}")
                received[dst][src] = [t.clone() for t in message]
        return received

    def arrival_order(self) -> list[int]:
        """The order in which this round's gradients reach the server."""
        if self.order == "shuffle":
            return torch.randperm(self.n_workers, generator=self.generator).tolist()
        return list(range(self.n_workers))

    def _push_pull(self, versions, grads):
        if self.server is None:
            raise RuntimeError("push_pull needs a parameter server attached to the communicator")
        replies: list[Any] = [None] * self.n_workers
        for i in self.arrival_order():
            replies[i] = self.server.apply(grads[i], versions[i])
        return replies

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])


class DistCommunicator(Communicator):
    """One worker per process over an initialised ``torch.distributed`` process group. With a
    parameter server (async-sgd) the last rank is the server and holds no worker."""

    def __init__(self, n_workers: int, has_server: bool, device: torch.device, timeout: float,
                 board: ProgressBoard | None = None) -> None:
        rank = dist.get_rank()
        super().__init__(n_workers, [rank] if rank < n_workers else [], is_logger=rank == 0)
        self.rank, self.device, self.board = rank, device, board
        self.server_rank = n_workers if has_server else None
        # Every rank must create the same groups in the same order.
        delta = timedelta(seconds=timeout)
        self.workers_group = dist.new_group(list(range(n_workers)), timeout=delta) if has_server else None
        gloo = dist.get_backend() == "gloo"
        # Receiving from any source needs gloo: NCCL has no wildcard receive.
        self.server_group = None if gloo or not has_server else dist.new_group(backend="gloo", timeout=delta)
        # DDP reduces the CPU models' gradients (the models stay on the CPU; NCCL would need them on GPUs).
        self.ddp_group = self.workers_group if gloo else dist.new_group(list(range(n_workers)), backend="gloo",
                                                                        timeout=delta)

    def waiting(self) -> contextlib.AbstractContextManager:
        return self._waiting()

    @contextlib.contextmanager
    def _waiting(self) -> Iterator[None]:
        # Not reset when the operation raises: a process that failed waiting on its peers is no suspect.
        if self.board is not None:
            self.board.set_waiting(self.rank, True)
        yield
        if self.board is not None:
            self.board.set_waiting(self.rank, False)

    def began(self, step: int) -> None:
        if self.board is not None:
            self.board.began(self.rank, step)

    def gather(self, objects):
        out: list[Any] = [None] * self.n_workers
        with self._waiting():
            dist.all_gather_object(out, objects[0], group=self.workers_group)
        return out

    def barrier(self) -> None:
        with self._waiting():
            dist.barrier()

    def agree(self, signum: int) -> int:
        value = torch.tensor([signum], dtype=torch.int64, device=self.device)
        with self._waiting():
            dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return int(value.item())

    def stop_server(self) -> None:
        if self.server_rank is not None:
            with self._waiting():
                dist.send(torch.tensor([STOP], dtype=torch.int64), self.server_rank, group=self.server_group)

    def _all_reduce_sum(self, tensors):
        total = tensors[0].to(self.device, copy=True)
        with self._waiting():
            dist.all_reduce(total, group=self.workers_group)
        return [total.to(tensors[0].device)]

    def _exchange(self, outgoing, incoming):
        ops, received = [], {}
        for dst, message in sorted(outgoing[0].items()):
            ops += [dist.P2POp(dist.isend, t.to(self.device), dst, tag=k) for k, t in enumerate(message)]
        for src, specs in sorted(incoming[0].items()):
            received[src] = [torch.empty(s.shape, dtype=s.dtype, device=self.device) for s in specs]
            ops += [dist.P2POp(dist.irecv, t, src, tag=k) for k, t in enumerate(received[src])]
        if ops:
            with self._waiting():
                for request in dist.batch_isend_irecv(ops):
                    request.wait()
        return [{src: [t.cpu() for t in m] for src, m in received.items()}]

    def _push_pull(self, versions, grads):
        group = self.server_group
        header = torch.empty(2, dtype=torch.int64)
        params = torch.empty(grads[0].numel(), dtype=grads[0].dtype)
        with self._waiting():
            dist.send(torch.tensor([versions[0]], dtype=torch.int64), self.server_rank, group=group)
            dist.send(grads[0].detach().cpu().contiguous(), self.server_rank, group=group)
            dist.recv(header, self.server_rank, group=group)
            dist.recv(params, self.server_rank, group=group)
        return [(int(header[0]), int(header[1]), params)]

    def serve(self, server: ParameterServer, n_messages: int) -> int:
        """Parameter-server loop: apply gradients in arrival order, reply with fresh parameters,
        until ``n_messages`` gradients are applied or every worker sent :meth:`stop_server`.
        Returns the number of gradients applied."""
        group, applied, stopped = self.server_group, 0, 0
        while applied < n_messages and stopped < self.n_workers:
            version = torch.empty(1, dtype=torch.int64)
            with self._waiting():
                src = dist.recv(version, None, group=group)
            if int(version[0]) == STOP:  # the worker sent every gradient of the steps it ran
                stopped += 1
                continue
            grad = torch.empty_like(server.param.data)
            with self._waiting():
                dist.recv(grad, src, group=group)
            new_version, staleness, params = server.apply(grad, int(version[0]))
            with self._waiting():
                dist.send(torch.tensor([new_version, staleness], dtype=torch.int64), src, group=group)
                dist.send(params, src, group=group)
            applied += 1
        return applied


class ProgressBoard:
    """Per process of a multi-process run, in memory shared with the launcher: the step it last
    began and whether it is waiting on its peers. Pass it to the processes when starting them."""

    def __init__(self, world_size: int) -> None:
        self.world_size = world_size
        self.values = multiprocessing.get_context("spawn").RawArray("q", 2 * world_size)
        for rank in range(world_size):
            self.values[2 * rank] = -1

    def began(self, rank: int, step: int) -> None:
        self.values[2 * rank] = step

    def set_waiting(self, rank: int, waiting: bool) -> None:
        self.values[2 * rank + 1] = int(waiting)

    def step(self, rank: int) -> int:
        """The step ``rank`` last began (-1: none yet)."""
        return self.values[2 * rank]

    def waiting(self, rank: int) -> bool:
        return bool(self.values[2 * rank + 1])

    def stalled(self) -> list[int]:
        """The ranks that stopped making progress when their peers timed out: those not waiting
        on anyone (a process that failed while waiting keeps its flag); if every one waits, those
        furthest behind."""
        busy = [r for r in range(self.world_size) if not self.waiting(r)]
        if busy:
            return busy
        steps = [self.step(r) for r in range(self.world_size)]
        return [r for r in range(self.world_size) if steps[r] == min(steps)]


class LinkModel:
    """Prices the critical-path messages and bytes of :class:`Communicator` in seconds.

    Args:
        bandwidth: bits per second of every worker's link.
        latency: seconds per message.
    """

    def __init__(self, bandwidth: float, latency: float) -> None:
        self.bandwidth, self.latency = bandwidth, latency

    def seconds(self, messages: float, nbytes: float) -> float:
        """``latency * messages + 8 * nbytes / bandwidth``.

        >>> round(LinkModel(100e6, 1e-3).seconds(6, 2.5e6), 9)  # 6 ms + 20 Mbit at 100 Mbit/s
        0.206
        """
        return self.latency * messages + 8 * nbytes / self.bandwidth
