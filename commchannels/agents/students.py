"""Batched students: B independent MLP classifiers stored as stacked tensors and trained in one
computation (batched matmuls with a hand-written backward pass).

Students of one batch may differ (:class:`StudentSpec`: widths, depth, activation,
initialisation scale, optimiser, batch size). They still train as one computation: every
student is padded to the batch's widest and deepest network. Padded hidden units start at zero
and stay at zero (their incoming and outgoing weights get zero gradients under every
activation here, all of which map 0 to 0); layers beyond a student's depth are identities;
examples beyond a student's batch size have weight 0. Internally the students are stored
sorted by (adaptive optimiser, activation, depth), so that each activation, each identity layer
and the adaptive optimisers' extra work apply to a few contiguous slices instead of masks over
the whole batch; inputs and outputs are in the caller's order. A batch of identical students
skips all of it.

Why not ``torch.func`` (``stack_module_state`` + ``functional_call`` + ``vmap(grad(...))``)?
Both give the same per-student gradients; for these small students the cost is dominated by
per-operation overhead, and the explicit ``bmm`` backward needs fewer operations and no
autograd graph. ``benchmarks/teaching.py`` measures both.

The default student matches :class:`commchannels.agents.classifiers.MLPClassifier` (Linear,
ReLU, ..., Linear) and so does the initialisation (``nn.Linear``'s uniform bound
``1/sqrt(fan_in)``, times ``init_scale``), but every draw comes from the caller's generator.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

ACTIVATIONS = ("relu", "tanh", "elu", "leaky_relu")
# optimiser -> (beta1, gradient weight, adaptive, bias correction, beta2), PyTorch's defaults:
# m = beta1 m + weight g; v = beta2 v + (1 - beta2) g^2; step = m / (sqrt(v) + eps) if adaptive
OPTIMISERS = {
    "sgd": (0.0, 1.0, False, False, 0.0),
    "momentum": (0.9, 1.0, False, False, 0.0),
    "rmsprop": (0.0, 1.0, True, False, 0.99),
    "adam": (0.9, 0.1, True, True, 0.999),
}
EPS = 1e-8
LEAKY_SLOPE = 0.01


@dataclass(frozen=True)
class StudentSpec:
    """One kind of student: an MLP and the optimiser that trains it."""

    hidden: tuple[int, ...] = (32,)
    activation: str = "relu"
    init_scale: float = 1.0
    optimiser: str = "sgd"
    batch_size: int = 16

    def __post_init__(self) -> None:
        if any(int(h) < 1 for h in self.hidden):
            raise ValueError(f"hidden={self.hidden} is invalid; expected layer sizes >= 1")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation={self.activation!r} is not allowed; expected one of {ACTIVATIONS}")
        if self.optimiser not in OPTIMISERS:
            raise ValueError(f"optimiser={self.optimiser!r} is not allowed; expected one of {tuple(OPTIMISERS)}")
        if not (math.isfinite(self.init_scale) and self.init_scale > 0):
            raise ValueError(f"init_scale={self.init_scale} is invalid; expected a finite value > 0")
        if self.batch_size < 1:
            raise ValueError(f"batch_size={self.batch_size} is invalid; expected an integer >= 1")


def _activate_(h: torch.Tensor, kind: str) -> None:
    """Apply an activation in place."""
    if kind == "relu":
        h.clamp_(min=0.0)
    elif kind == "tanh":
        h.tanh_()
    elif kind == "elu":
        torch.nn.functional.elu_(h)
    else:
        torch.nn.functional.leaky_relu_(h, LEAKY_SLOPE)


def _backward(grad: torch.Tensor, out: torch.Tensor, kind: str) -> torch.Tensor:
    """The gradient through an activation, from its output (all four are monotone): one fused
    kernel, but for tanh, whose kernel rounds differently from ``grad * (1 - out^2)``."""
    if kind == "relu":
        return torch.ops.aten.threshold_backward(grad, out, 0.0)
    if kind == "tanh":
        return grad * (1 - out * out)
    if kind == "elu":
        return torch.ops.aten.elu_backward(grad, 1.0, 1.0, 1.0, True, out)
    return torch.ops.aten.leaky_relu_backward(grad, out, LEAKY_SLOPE, True)


def log_sum_exp(x: torch.Tensor, maxes: torch.Tensor | None = None) -> torch.Tensor:
    """``x.logsumexp(-1, keepdim=True)``, the same value bit for bit in fewer operations (no
    special case for infinite maxima: a row with one gives NaN, which callers treat as diverged),
    reusing the row maxima ``maxes`` when the caller has them."""
    if maxes is None:
        maxes = x.amax(-1, keepdim=True)
    return (x - maxes).exp_().sum(-1, keepdim=True).log_().add_(maxes)


def _runs(values: list) -> list[tuple[int, int, object]]:
    """Maximal runs ``(start, end, value)`` of equal consecutive values."""
    runs: list[tuple[int, int, object]] = []
    for i, v in enumerate(values):
        if runs and runs[-1][2] == v:
            runs[-1] = (runs[-1][0], i + 1, v)
        else:
            runs.append((i, i + 1, v))
    return runs


class BatchedMLP:
    """B MLP students with stacked parameters, identical or of several :class:`StudentSpec` kinds.

    Args:
        n_features: input size.
        n_classes: number of output logits.
        hidden: hidden layer sizes of identical plain-SGD ReLU students (``()``: linear students);
            ignored when ``specs`` is given.
        batch_size: number of students B.
        specs: the kinds of student; each student's kind is set by :meth:`init_` (default: kind 0).
    """

    def __init__(self, n_features: int, n_classes: int, hidden: Sequence[int], batch_size: int,
                 specs: Sequence[StudentSpec] | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} is invalid; expected an integer >= 1")
        self.specs = tuple(specs) if specs else (StudentSpec(hidden=tuple(int(h) for h in hidden)),)
        self._uniform = len(set(self.specs)) == 1
        if self._uniform:  # exact sizes, no padding
            hidden = self.specs[0].hidden
        else:
            depth = max(len(s.hidden) for s in self.specs)
            hidden = (max(h for s in self.specs for h in s.hidden),) * depth
        self.sizes = [int(n_features), *hidden, int(n_classes)]
        self.batch_size = B = int(batch_size)
        # one flat (B, P) buffer holds every parameter, so the optimisers update it in a few
        # operations; weights and biases are views into it (weights first, then biases)
        self._shapes = [(a, b) for a, b in zip(self.sizes[:-1], self.sizes[1:])] + [(b,) for b in self.sizes[1:]]
        self.flat = torch.zeros(B, sum(math.prod(shape) for shape in self._shapes))
        self._bind_views()
        self.max_batch = max(s.batch_size for s in self.specs)
        stateful = not all(s.optimiser == "sgd" for s in self.specs)
        self.moments = torch.zeros_like(self.flat) if stateful else None
        adaptive = any(OPTIMISERS[s.optimiser][2] for s in self.specs)
        self.squares = torch.zeros_like(self.flat) if adaptive else None
        self.steps = torch.zeros(B)
        self.last_grad_norm = torch.zeros(B)
        self._init_bounds = self._bounds()  # once: every init_ scales its draws by them
        self._set_kinds(torch.zeros(B, dtype=torch.long))

    def _bind_views(self) -> None:
        """``weights`` and ``biases`` as views into ``flat`` (weights first, then biases)."""
        views, offset = [], 0
        for shape in self._shapes:
            views.append(self.flat[:, offset : offset + math.prod(shape)].view(self.batch_size, *shape))
            offset += math.prod(shape)
        self.weights, self.biases = views[: len(views) // 2], views[len(views) // 2 :]

    def __getstate__(self) -> dict:
        # pickle would copy the views apart from ``flat``: rebuild them on unpickling instead
        state = dict(self.__dict__)
        del state["weights"], state["biases"]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._bind_views()

    @property
    def parameters(self) -> list[torch.Tensor]:
        """All stacked parameter tensors (leading dimension B, in the internal slot order)."""
        return [*self.weights, *self.biases]

    # ----------------------------------------------------------------- layout
    def _set_kinds(self, kind: torch.Tensor) -> None:
        """Give student ``b`` the kind ``kind[b]``: sort the slots and precompute their runs."""
        self.kind = kind.clone()
        key = [(OPTIMISERS[s.optimiser][2], s.activation, len(s.hidden))
               for s in (self.specs[int(k)] for k in kind)]
        order = sorted(range(self.batch_size), key=key.__getitem__)  # stable
        self._order = torch.tensor(order, dtype=torch.long)  # slot -> student
        self._inverse = torch.argsort(self._order)  # student -> slot
        self._permuted = order != list(range(self.batch_size))
        specs = [self.specs[int(kind[b])] for b in order]  # per slot
        table = torch.tensor([OPTIMISERS[s.optimiser] for s in specs], dtype=torch.float32).reshape(-1, 5)
        beta1, weight, _, debias, beta2 = table.unbind(1)
        self._beta1, self._weight, self._beta2, self._debias = beta1, weight, beta2, debias.bool()
        self._adaptive = [(a, b) for a, b, v in _runs([OPTIMISERS[s.optimiser][2] for s in specs]) if v]
        self._fixed = [(a, b) for a, b, v in _runs([OPTIMISERS[s.optimiser][2] for s in specs]) if not v]
        # per hidden layer i, runs of slots (start, end, activation), activation None where the
        # layer is an identity (students with fewer than i + 1 hidden layers): no work there
        self._layer_runs = [_runs([s.activation if len(s.hidden) > i else None for s in specs])
                            for i in range(len(self.sizes) - 2)]
        sizes = torch.tensor([s.batch_size for s in specs], dtype=torch.float32)
        valid = torch.arange(self.max_batch)[None, :] < sizes[:, None]
        self._example_weight = valid.float() / sizes[:, None]  # (B, max_batch): mean over own batch

    def _to_slots(self, x: torch.Tensor) -> torch.Tensor:
        return x[self._order] if self._permuted else x

    def _to_students(self, x: torch.Tensor) -> torch.Tensor:
        return x[self._inverse] if self._permuted else x

    def init_(self, generator: torch.Generator, mask: torch.Tensor | None = None,
              kind: torch.Tensor | None = None) -> None:
        """Re-draw the students selected by ``mask`` (all when ``None``) from ``generator``.

        ``kind`` ((B,) indices into ``specs``) gives the re-drawn students a new kind (the others
        keep theirs, and their parameters and optimiser state move with them to their new
        internal slots). The draws are made for all B students in any case, so the values a
        student gets do not depend on ``mask``.
        """
        if kind is not None:
            if mask is None:
                self._set_kinds(kind)
            else:
                previous = self._inverse  # student -> old slot
                self._set_kinds(torch.where(mask, kind, self.kind))
                moved = previous[self._order]  # new slot -> the old slot of its student
                for state in (self.flat, self.moments, self.squares, self.steps):
                    if state is not None:
                        state.copy_(state[moved])
        slots = torch.ones(self.batch_size, dtype=torch.bool) if mask is None else self._to_slots(mask)
        for (w, b), (scale_w, scale_b) in zip(zip(self.weights, self.biases), self._init_bounds):
            # drawn in the students' order, scaled by each student's kind
            new_w = (torch.rand(w.shape, generator=generator) * 2 - 1) * scale_w[self.kind]
            new_b = (torch.rand(b.shape, generator=generator) * 2 - 1) * scale_b[self.kind]
            w[slots] = self._to_slots(new_w)[slots]
            b[slots] = self._to_slots(new_b)[slots]
        self.steps[slots] = 0
        for state in (self.moments, self.squares):
            if state is not None:
                state[slots] = 0.0

    def _bounds(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per layer, each kind's initialisation bounds ``(K, fan_in, fan_out)`` and ``(K, fan_out)``:
        ``init_scale / sqrt(own fan_in)`` on its own units, 0 on its padding."""
        bounds = []
        last = len(self.weights) - 1
        for layer, w in enumerate(self.weights):
            scale_w = torch.zeros(len(self.specs), *w.shape[1:])
            scale_b = torch.zeros(len(self.specs), w.shape[2])
            for k, spec in enumerate(self.specs):
                depth = len(spec.hidden)
                if layer < depth or layer == last:
                    n_in = self.sizes[0] if layer == 0 else spec.hidden[min(layer, depth) - 1]
                    n_out = self.sizes[-1] if layer == last else spec.hidden[layer]
                    bound = spec.init_scale / math.sqrt(n_in)
                    scale_w[k, :n_in, :n_out] = bound
                    scale_b[k, :n_out] = bound
            bounds.append((scale_w, scale_b))
        return bounds

    def zero_(self, mask: torch.Tensor) -> None:
        """Set the selected students' parameters to 0 (used to quarantine diverged students)."""
        slots = self._to_slots(mask)
        for p in (self.flat, self.moments, self.squares):
            if p is not None:
                p[slots] = 0.0

    # ----------------------------------------------------------------- computation
    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits ``(B, N, C)`` in slot order and every layer's input (``x``: shared or in slot order)."""
        inputs = []
        h = x
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            inputs.append(h)
            runs = self._layer_runs[i] if i < last else ()
            if h.dim() == 2:  # inputs shared by every student (layer 0 only): one (N, F) x (F, B * H) product
                n_out = w.shape[2]
                # (the product, then the bias in place: same values as addmm, without its bias copy)
                out = (h @ w.transpose(0, 1).reshape(w.shape[1], -1)).add_(b.reshape(1, -1))
                out = out.view(h.shape[0], self.batch_size, n_out).transpose(0, 1).contiguous()
            elif all(kind is not None for _, _, kind in runs):
                out = torch.baddbmm(b[:, None, :], h, w)  # one fused kernel for the product and the bias
            else:  # an identity run copies its input; only the other runs pay for a product
                out = h.new_empty(h.shape[0], h.shape[1], w.shape[2])
                for start, end, kind in runs:
                    if kind is None:
                        out[start:end] = h[start:end]
                    else:
                        torch.baddbmm(b[start:end, None, :], h[start:end], w[start:end], out=out[start:end])
            for start, end, kind in runs:
                if kind is not None:
                    _activate_(out[start:end], kind)
            h = out
        return h, inputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, N, n_classes)`` of every student on ``x``: ``(N, F)`` inputs shared by
        all students, or ``(B, N, F)`` one batch per student."""
        logits, _ = self._forward(x if x.dim() == 2 else self._to_slots(x))
        return self._to_students(logits)

    @property
    def order(self) -> torch.Tensor:
        """``(B,)`` the student held in each internal slot (see ``sgd_step(..., slot_order=True)``)."""
        return self._order

    def sgd_step(self, x: torch.Tensor, targets: torch.Tensor, lr: torch.Tensor,
                 slot_order: bool = False) -> torch.Tensor:
        """One optimiser update of every student on its own batch with soft-label cross-entropy.

        Args:
            x: ``(B, n, F)`` one batch per student (``n >= max_batch``: a student of batch size
                ``k`` uses its first ``k`` examples).
            targets: ``(B, n, n_classes)`` target distributions (one-hot for true labels).
            lr: ``(B,)`` learning rate of each student (0 leaves a student unchanged, optimiser
                state included).
            slot_order: the inputs are already in slot order (row ``i`` for student
                ``order[i]``), which saves permuting large batches.

        Returns:
            ``(B,)`` training loss of each student before the update; ``last_grad_norm`` holds
            the gradient's norm.
        """
        if not slot_order:
            x, targets, lr = self._to_slots(x), self._to_slots(targets), self._to_slots(lr)
        logits, inputs = self._forward(x)
        # logits - logsumexp: same values as F.log_softmax, several times faster on a last dim of ~10
        log_p = logits - log_sum_exp(logits)
        if self._uniform:
            loss = -(targets * log_p).sum(-1).mean(-1)
            grad = (log_p.exp() - targets) / x.shape[1]  # d(mean cross-entropy)/d(logits)
        else:
            weight = self._example_weight[:, : x.shape[1], None]
            loss = -((targets * log_p).sum(-1) * weight[..., 0]).sum(-1)
            grad = (log_p.exp() - targets) * weight
        grads_w, grads_b = [], []
        last = len(self.weights) - 1
        for i in range(last, -1, -1):
            a = inputs[i]
            if a.dim() == 2:
                a = a.expand(self.batch_size, *a.shape)
            if i == last:
                grads_w.append(a.transpose(1, 2) @ grad)
                grads_b.append(grad.sum(1))
                if i > 0:
                    grad = grad @ self.weights[i].transpose(1, 2)
                continue
            # grad: d loss / d output of hidden layer i (= inputs[i + 1]); an identity run passes it
            # through unchanged and has zero parameter gradients
            out, runs = inputs[i + 1], self._layer_runs[i]
            if all(kind is not None for _, _, kind in runs):
                pre = torch.empty_like(grad)
                for start, end, kind in runs:
                    pre[start:end] = _backward(grad[start:end], out[start:end], kind)
                grads_w.append(a.transpose(1, 2) @ pre)
                grads_b.append(pre.sum(1))
                if i > 0:
                    grad = pre @ self.weights[i].transpose(1, 2)
                continue
            grad_w, grad_b = torch.zeros_like(self.weights[i]), torch.zeros_like(self.biases[i])
            upstream = torch.empty_like(grad) if i > 0 else None
            for start, end, kind in runs:
                if kind is None:
                    if upstream is not None:
                        upstream[start:end] = grad[start:end]
                    continue
                pre = _backward(grad[start:end], out[start:end], kind)
                grad_w[start:end] = a[start:end].transpose(1, 2) @ pre
                grad_b[start:end] = pre.sum(1)
                if upstream is not None:
                    upstream[start:end] = pre @ self.weights[i][start:end].transpose(1, 2)
            grads_w.append(grad_w)
            grads_b.append(grad_b)
            grad = upstream
        grads = torch.cat([g.flatten(1) for g in (*reversed(grads_w), *reversed(grads_b))], 1)
        self.last_grad_norm = self._to_students(torch.linalg.vector_norm(grads, dim=1))
        self._apply(grads, lr)
        return self._to_students(loss)

    def _apply(self, grads: torch.Tensor, lr: torch.Tensor) -> None:
        """The optimisers' update (see ``OPTIMISERS``) of the flat ``(B, P)`` parameters, on
        contiguous slices of slots. A student with learning rate 0 is frozen: unlike ``torch.optim``
        (where lr=0 still advances momentum and Adam's step count), its optimiser state and step
        count stay as they are too (momentum m * 1 + 0, squares likewise), so a masked environment
        is left exactly as it was. Its gradient is zeroed first: a non-finite one must not leak in."""
        live = lr != 0
        if not bool(live.all()):
            grads = grads.masked_fill(~live[:, None], 0.0)
        if self.moments is None:  # plain SGD for everyone
            self.flat.sub_(lr[:, None] * grads)
            return
        self.steps += live
        beta1, weight = torch.where(live, self._beta1, 1.0), torch.where(live, self._weight, 0.0)
        m = self.moments.mul_(beta1[:, None]).add_(grads * weight[:, None])
        for start, end in self._fixed:
            self.flat[start:end] -= lr[start:end, None] * m[start:end]
        for start, end in self._adaptive:
            beta1, beta2 = self._beta1[start:end], self._beta2[start:end]
            # bias corrections (Adam only; none before a student's first step)
            steps, debias = self.steps[start:end], self._debias[start:end] & (self.steps[start:end] > 0)
            m_scale = torch.where(debias, 1 - beta1 ** steps, 1.0)
            v_scale = torch.where(debias, 1 - beta2 ** steps, 1.0)
            g = grads[start:end]
            decay = torch.where(live[start:end], beta2, 1.0)
            v = self.squares[start:end].mul_(decay[:, None]).add_(g * g * (1 - decay)[:, None])
            denom = (v / v_scale[:, None]).sqrt_().add_(EPS)
            self.flat[start:end] -= (lr[start:end] / m_scale)[:, None] * m[start:end] / denom

    def finite(self) -> torch.Tensor:
        """``(B,)`` bool: which students have only finite parameters."""
        return self._to_students(torch.isfinite(self.flat).all(1))

    def state(self, index: int) -> dict[str, torch.Tensor]:
        """Student ``index`` as a state dict loadable into ``MLPClassifier`` of the same sizes
        (identical plain ReLU students only)."""
        if not self._uniform or self.specs[0].activation != "relu":
            raise ValueError("state() exports identical ReLU students only (MLPClassifier's architecture)")
        state = {}
        for layer, (w, b) in enumerate(zip(self.weights, self.biases)):
            state[f"net.{2 * layer}.weight"] = w[index].T.clone()
            state[f"net.{2 * layer}.bias"] = b[index].clone()
        return state

    def parameters_of(self, index: int) -> list[torch.Tensor]:
        """Student ``index``'s stacked-layout parameters (padded), in the caller's numbering."""
        slot = int(self._inverse[index])
        return [p[slot] for p in self.parameters]
