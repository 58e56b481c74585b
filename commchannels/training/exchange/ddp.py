"""Gradient averaging as ``DistributedDataParallel`` runs it, with its communication hooks.

On ``torch.distributed`` each worker's model is wrapped in :class:`~torch.nn.parallel.DistributedDataParallel`
and one of torch's DDP communication hooks averages its gradient buckets during the backward pass:

=========  =====================================================================================
hook       what crosses the wire per bucket
=========  =====================================================================================
allreduce  the float32 bucket (``default_hooks.allreduce_hook``, what DDP does without a hook)
fp16       the bucket cast to float16 (``default_hooks.fp16_compress_hook``)
powersgd   plain all-reduce for ``start_powerSGD_iter`` steps, then per bucket three all-reduces:
           the uncompressed tensors (vectors, and matrices too small to gain), the ``P`` factors,
           the ``Q`` factors (``powerSGD_hook.powerSGD_hook``, Vogels et al. 2019: rank-r power
           iteration with error feedback and warm start)
=========  =====================================================================================

The hooks' all-reduces are counted by a wrapper, from the bucket (allreduce, fp16) or from the
PowerSGD state's own tally of the elements it all-reduces (``total_numel_after_compression``).

When simulated, the same arithmetic runs on the simulated all-reduce (:class:`SimGradientSync`):
the same bucket layout (``dist._compute_bucket_assignment_by_size``, as DDP computes it), the
same division before summing, and for PowerSGD a line-by-line port of ``powerSGD_hook`` that
keeps torch's :class:`PowerSGDState` (so both modes checkpoint the same state) and calls its
``_orthogonalize``. DDP is built with ``find_unused_parameters=True``: DDP then never rebuilds
its buckets, so their layout is the one computed here, before and after a resume.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
from torch.distributed.algorithms.ddp_comm_hooks import powerSGD_hook as psgd
from torch.nn.parallel import DistributedDataParallel

BUCKET_BYTES = 25 * 2**20  # DDP's default bucket_cap_mb


def bucket_layout(params: list[torch.nn.Parameter]) -> list[list[int]]:
    """Parameter indices of each DDP bucket, in the order DDP reduces them."""
    limits = [dist._DEFAULT_FIRST_BUCKET_BYTES, BUCKET_BYTES]
    indices, _ = dist._compute_bucket_assignment_by_size(params, limits, [False] * len(params))
    return list(reversed([list(b) for b in indices]))


def powersgd_state(rank: int, start: int, seed: int, process_group: Any = None) -> psgd.PowerSGDState:
    """torch's PowerSGD state with our rank, start step and seed (its other defaults kept)."""
    return psgd.PowerSGDState(process_group=process_group, matrix_approximation_rank=rank,
                              start_powerSGD_iter=start, random_seed=seed)


def state_dict(state: psgd.PowerSGDState | None) -> dict[str, Any]:
    """The parts of a PowerSGD state that change during training (none for the other hooks)."""
    if state is None:
        return {}
    rng = state.rng.get_state()
    return {"iter": state.iter, "error": dict(state.error_dict), "p": dict(state.p_memory_dict),
            "q": dict(state.q_memory_dict), "rng_keys": torch.from_numpy(rng[1].astype(np.int64)),
            "rng_pos": int(rng[2]), "rng_gauss": (int(rng[3]), float(rng[4])),
            "numel": (state.total_numel_before_compression, state.total_numel_after_compression)}


def load_state_dict(state: psgd.PowerSGDState | None, saved: dict[str, Any]) -> None:
    if state is None:
        return
    state.iter = int(saved["iter"])
    state.error_dict = {int(k): v.clone() for k, v in saved["error"].items()}
    state.p_memory_dict = {int(k): v.clone() for k, v in saved["p"].items()}
    state.q_memory_dict = {int(k): v.clone() for k, v in saved["q"].items()}
    keys = saved["rng_keys"].numpy().astype(np.uint32)
    state.rng.set_state(("MT19937", keys, saved["rng_pos"], *saved["rng_gauss"]))
    state.total_numel_before_compression, state.total_numel_after_compression = saved["numel"]


class GradientSync:
    """Averages the local workers' gradients after (simulated) or during (DDP) their backward."""

    def __init__(self, hook: str, n_local: int, rank: int = 1, start: int = 2, seed: int = 0,
                 process_group: Any = None) -> None:
        self.hook = hook
        self.states = [powersgd_state(rank, start, seed, process_group) if hook == "powersgd" else None
                       for _ in range(n_local)]

    def reduce(self) -> None:
        """Average the gradients (no-op where DDP did it during the backward pass)."""

    def state_dict(self, i: int) -> dict[str, Any]:
        return state_dict(self.states[i])

    def load_state_dict(self, i: int, saved: dict[str, Any]) -> None:
        load_state_dict(self.states[i], saved)


class DDPGradientSync(GradientSync):
    """The one local worker's model wrapped in DDP (gloo / NCCL), with a counted comm hook."""

    def __init__(self, comm: Any, workers: list[Any], hook: str, **kw: Any) -> None:
        super().__init__(hook, len(workers), **kw)
        worker, state = workers[0], self.states[0]
        worker.forward = DistributedDataParallel(worker.model, find_unused_parameters=True,
                                                 process_group=comm.ddp_group)
        def counted(_, bucket):  # unannotated: DDP checks the annotations, which postponed evaluation turns to str
            buffer = bucket.buffer()
            if hook == "allreduce":
                comm.count_all_reduce(0, buffer.numel() * buffer.element_size())
                return default_hooks.allreduce_hook(comm.ddp_group, bucket)
            if hook == "fp16":
                comm.count_all_reduce(0, buffer.numel() * 2)
                return default_hooks.fp16_compress_hook(comm.ddp_group, bucket)
            before, plain = state.total_numel_after_compression, state.iter < state.start_powerSGD_iter
            future = psgd.powerSGD_hook(state, bucket)
            # PowerSGD chains its all-reduces in callbacks; finishing them here keeps them from
            # interleaving with the next bucket's or DDP's own (unused-parameter map) all-reduce,
            # which gloo would mismatch since it pairs collectives by their order.
            future.wait()
            if plain:
                comm.count_all_reduce(0, buffer.numel() * buffer.element_size())
            else:  # uncompressed tensors, Ps and Qs: three all-reduces
                comm.count_all_reduce(0, (state.total_numel_after_compression - before) * buffer.element_size(), 3)
            return future

        worker.forward.register_comm_hook(None, counted)


class SimGradientSync(GradientSync):
    """Every worker in this process: the hook's arithmetic over the simulated all-reduce."""

    def __init__(self, comm: Any, workers: list[Any], hook: str, **kw: Any) -> None:
        super().__init__(hook, len(workers), **kw)
        self.comm, self.workers = comm, workers
        self.layout = bucket_layout(workers[0].params)

    def reduce(self) -> None:
        n = self.comm.n_workers
        for index, bucket in enumerate(self.layout):
            buffers = [torch.cat([w.params[k].grad.reshape(-1) for k in bucket]) for w in self.workers]
            if self.hook == "fp16":
                summed = self.comm.all_reduce_sum([b.to(torch.float16).div_(n) for b in buffers])
                out = [s.to(b.dtype) for s, b in zip(summed, buffers)]
            elif self.hook == "powersgd" and self.states[0].iter >= self.states[0].start_powerSGD_iter:
                out = self._powersgd(index, bucket, buffers)
            else:
                out = self.comm.all_reduce_sum([b.div_(n) for b in buffers])
            if self.hook == "powersgd" and index == len(self.layout) - 1:
                for state in self.states:
                    state.iter += 1  # PowerSGDState.maybe_increase_iter on the last bucket
            for worker, flat in zip(self.workers, out):
                offset = 0
                for k in bucket:
                    p = worker.params[k]
                    p.grad = flat[offset:offset + p.numel()].view_as(p).clone()
                    offset += p.numel()

    def _powersgd(self, index: int, bucket: list[int], buffers: list[torch.Tensor]) -> list[torch.Tensor]:
        """``powerSGD_hook`` on every local worker's bucket, its three all-reduces in lockstep."""
        n, eps = self.comm.n_workers, self.states[0].orthogonalization_epsilon
        shapes = [self.workers[0].params[k].shape for k in bucket]
        copies, uncompressed, matrices, ps, qs = [], [], [], [], []
        for state, buffer in zip(self.states, buffers):
            if index in state.error_dict:  # error feedback
                buffer.add_(state.error_dict[index])
            else:
                state.error_dict[index] = torch.zeros_like(buffer)
            copies.append(buffer.clone())
            tensors, offset = [], 0
            for shape in shapes:
                numel = int(np.prod(shape))
                tensors.append(buffer[offset:offset + numel].view(shape))
                offset += numel
            to_compress, plain, p_size, q_size = [], [], 0, 0
            for tensor in tensors:
                matrix = tensor.view(tensor.shape[0], -1)
                rows, cols = matrix.shape
                r = min(rows, cols, state.matrix_approximation_rank)
                test = psgd._should_compress(rows, cols, r, state.min_compression_rate)
                state.total_numel_before_compression += test[1]
                if test[0]:
                    to_compress.append(matrix)
                    p_size, q_size = p_size + rows * r, q_size + cols * r
                    state.total_numel_after_compression += test[2]
                else:
                    plain.append(tensor)
                    state.total_numel_after_compression += test[1]
            randomize = index not in state.p_memory_dict  # warm start: Q kept from the last step
            if randomize:
                state.p_memory_dict[index] = torch.empty(p_size, dtype=buffer.dtype)
                state.q_memory_dict[index] = torch.empty(q_size, dtype=buffer.dtype)
            by_shape = defaultdict(list)
            for matrix in to_compress:
                by_shape[matrix.shape].append(matrix)
            mats, p_views, q_views, p_at, q_at = [], [], [], 0, 0
            for group in by_shape.values():
                for matrix in group:
                    rows, cols = matrix.shape
                    r = min(rows, cols, state.matrix_approximation_rank)
                    mats.append(matrix.unsqueeze(0))
                    p_views.append(state.p_memory_dict[index][p_at:p_at + rows * r].view(1, rows, r))
                    q_views.append(state.q_memory_dict[index][q_at:q_at + cols * r].view(1, cols, r))
                    p_at, q_at = p_at + rows * r, q_at + cols * r
            if randomize:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(state.rng.randint(1_000_000_000))
                    for q in q_views:
                        q.copy_(torch.randn(*q.shape, dtype=buffer.dtype))
                        psgd._orthogonalize(q, eps)
            else:
                for q in q_views:
                    psgd._orthogonalize(q, eps)
            for matrix, q, p in zip(mats, q_views, p_views):
                torch.bmm(matrix, q, out=p)
            empty = torch.tensor([], dtype=buffer.dtype)
            uncompressed.append((plain, torch.cat([t.reshape(-1) for t in plain]) if plain else empty))
            matrices.append(mats)
            ps.append(p_views)
            qs.append(q_views)
        summed = self.comm.all_reduce_sum([memory for _, memory in uncompressed])
        for (plain, _), total in zip(uncompressed, summed):
            total = total.div_(n)
            offset = 0
            for tensor in plain:
                tensor.copy_(total[offset:offset + tensor.numel()].view_as(tensor))
                offset += tensor.numel()
        summed = self.comm.all_reduce_sum([s.p_memory_dict[index] for s in self.states])
        for state, total, p_views, mats, q_views in zip(self.states, summed, ps, matrices, qs):
            state.p_memory_dict[index].copy_(total)
            for p in p_views:
                psgd._orthogonalize(p, eps)
            for matrix, p, q in zip(mats, p_views, q_views):
                torch.bmm(matrix.transpose(1, 2), p, out=q)
        summed = self.comm.all_reduce_sum([s.q_memory_dict[index] for s in self.states])
        for state, total, p_views, mats, q_views, buffer, copy in zip(self.states, summed, ps, matrices, qs,
                                                                       buffers, copies):
            state.q_memory_dict[index].copy_(total).div_(n)
            for p, q, matrix in zip(p_views, q_views, mats):
                torch.bmm(p, q.transpose(1, 2), out=matrix)
            state.error_dict[index] = copy - buffer
        return buffers


def gradient_sync(comm: Any, workers: list[Any], hook: str, rank: int = 1, start: int = 2,
                  seed: int = 0) -> GradientSync:
    """DDP with ``hook`` on torch.distributed, its simulation when ``comm.simulated``."""
    cls = SimGradientSync if comm.simulated else DDPGradientSync
    kw: dict[str, Any] = {"rank": rank, "start": start, "seed": seed}
    if not comm.simulated:
        kw["process_group"] = comm.ddp_group
    return cls(comm, workers, hook, **kw)
