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


def _derivative(out: torch.Tensor, kind: str) -> torch.Tensor:
    """The activation's derivative, from its output (all four are monotone)."""
    if kind == "relu":
        return (out > 0).to(out.dtype)
    if kind == "tanh":
        return 1 - out * out
    if kind == "elu":
        return torch.where(out > 0, 1.0, out + 1)
    return torch.where(out > 0, 1.0, LEAKY_SLOPE)


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
        self._activations = _runs([s.activation for s in specs])
        # identity slices of hidden layer i: the students with fewer than i + 1 hidden layers
        self._skips = [[(a, b) for a, b, v in _runs([len(s.hidden) <= i for s in specs]) if v]
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
        """Re-draw the students selected by ``mask`` (all when ``None``) from ``generator``,
        optionally giving every student a new kind (``kind``: (B,) indices into ``specs``,
        which re-draws all students)."""
        if kind is not None:
            self._set_kinds(kind)
            mask = None
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
            if h.dim() == 2:  # inputs shared by every student: one (N, F) x (F, B * H) product
                n_out = w.shape[2]
                out = torch.addmm(b.reshape(1, -1), h, w.transpose(0, 1).reshape(w.shape[1], -1))
                out = out.view(h.shape[0], self.batch_size, n_out).transpose(0, 1).contiguous()
            else:  # one fused kernel for the product and the bias
                out = torch.baddbmm(b[:, None, :], h, w)
            if i < last:
                for start, end, kind in self._activations:
                    _activate_(out[start:end], kind)
                for start, end in self._skips[i]:  # identity layers (never layer 0)
                    out[start:end] = h[start:end]
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
            lr: ``(B,)`` learning rate of each student (0 leaves a student unchanged).
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
        log_p = logits - logits.logsumexp(-1, keepdim=True)
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
            if i < last:  # grad: d loss / d output of hidden layer i (= inputs[i + 1])
                outer = grad
                out = inputs[i + 1]
                grad = torch.empty_like(outer)
                for start, end, kind in self._activations:
                    torch.mul(outer[start:end], _derivative(out[start:end], kind), out=grad[start:end])
                for start, end in self._skips[i]:  # an identity layer has no parameter gradient
                    grad[start:end] = 0.0
            a = inputs[i]
            if a.dim() == 2:
                a = a.expand(self.batch_size, *a.shape)
            grads_w.append(a.transpose(1, 2) @ grad)
            grads_b.append(grad.sum(1))
            if i > 0:
                upstream = grad @ self.weights[i].transpose(1, 2)
                if i < last:
                    for start, end in self._skips[i]:  # ... and passes its gradient through
                        upstream[start:end] = outer[start:end]
                grad = upstream
        grads = torch.cat([g.flatten(1) for g in (*reversed(grads_w), *reversed(grads_b))], 1)
        self.last_grad_norm = self._to_students(torch.linalg.vector_norm(grads, dim=1))
        self._apply(grads, lr)
        return self._to_students(loss)

    def _apply(self, grads: torch.Tensor, lr: torch.Tensor) -> None:
        """The optimisers' update (see ``OPTIMISERS``) of the flat ``(B, P)`` parameters, on
        contiguous slices of slots."""
        if self.moments is None:  # plain SGD for everyone
            self.flat.sub_(lr[:, None] * grads)
            return
        self.steps += 1
        m = self.moments.mul_(self._beta1[:, None]).add_(grads * self._weight[:, None])
        for start, end in self._fixed:
            self.flat[start:end] -= lr[start:end, None] * m[start:end]
        for start, end in self._adaptive:
            beta1, beta2 = self._beta1[start:end], self._beta2[start:end]
            steps, debias = self.steps[start:end], self._debias[start:end]
            m_scale = torch.where(debias, 1 - beta1 ** steps, 1.0)  # bias corrections (Adam only)
            v_scale = torch.where(debias, 1 - beta2 ** steps, 1.0)
            g = grads[start:end]
            v = self.squares[start:end].mul_(beta2[:, None]).add_(g * g * (1 - beta2)[:, None])
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
