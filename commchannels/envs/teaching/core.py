"""The batched teaching core: B (teacher, student) environments stepped together.

Each environment holds one randomly initialised MLP student of a *family* drawn at reset from
the settings' preset and split (:mod:`commchannels.envs.teaching.families`: network, optimiser,
batch size, label noise, class imbalance). A *directive* ``(data bucket, learning-rate level,
target level)`` is applied to every student at once as ``updates_per_step`` batched optimiser
updates (:class:`commchannels.agents.students.BatchedMLP`, every family padded into one
computation), then all students are evaluated on the validation set in one batched forward pass. The
PettingZoo AEC / Parallel views and the Gymnasium view are this class with ``batch_size=1``;
the policy-gradient trainer and the baselines use it directly (the vector API).

Life of a batch: ``reset()`` draws B fresh students; in ``student_speaks`` mode
``report(tokens)`` stores the students' messages; ``step(directives)`` trains and evaluates and
returns the rewards and episode ends. A finished environment (target reached, diverged or
truncated) is frozen: later steps leave it unchanged and reward it 0 until the next ``reset``.
Every random draw (student initialisation, batch sampling) comes from ``self.generator``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from commchannels.agents.students import BatchedMLP, log_sum_exp
from commchannels.config import check_int, check_memory
from commchannels.envs.actions import integer_tensor
from commchannels.envs.teaching.families import kept_examples, noisy_labels
from commchannels.envs.teaching.settings import TeachingSettings
from commchannels.envs.teaching.task import TeachingTask, build_task
from commchannels.seeding import torch_generator

LOSS_CAP = 100.0  # the loss feature is log1p(loss) / log1p(LOSS_CAP), clipped to [0, 1]
GRAD_CAP = 1000.0  # the gradient-norm feature is log1p(norm) / log1p(GRAD_CAP), clipped to [0, 1]
N_SCALARS = 5  # progress, loss, accuracy, gradient norm, loss trend: the statistics before per-class accuracy
MAX_ENVS = 2**24  # environments per core; check_memory catches fewer environments of large students


def env_bytes(settings: TeachingSettings, task: TeachingTask) -> int:
    """Rough bytes one environment needs: its student's parameters (float32, with the update's
    gradients and re-initialisation draws), one SGD batch with its activations and targets, and
    the batched evaluation on the validation and probe sets (activations, logits, copies)."""
    families = settings.families
    depth = max(len(f.student.hidden) for f in families)
    width = max(max(f.student.hidden) for f in families)
    batch = max(f.student.batch_size for f in families)
    sizes = [task.n_features, *(width,) * depth, task.n_classes]
    params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    hidden, c = depth * width, task.n_classes
    examples = len(task.y_val) + task.n_probe
    return 4 * (5 * params + batch * (task.n_features + 4 * c + 3 * hidden)
                + examples * (hidden + 4 * c)) + 64 * (1 + settings.report_len)


class TeachingCore:
    """B teaching environments as tensors.

    Args:
        settings: the rules (default: ``TeachingSettings(**kwargs)``).
        n_envs: number of environments B, in [1, 2**24] (and few enough to fit in memory).
        seed: seed of the environment's own generator (``reset(seed=...)`` reseeds).
        **kwargs: :class:`TeachingSettings` fields, when ``settings`` is not given.
    """

    def __init__(self, settings: TeachingSettings | None = None, n_envs: int = 1,
                 seed: int | None = None, **kwargs: Any) -> None:
        if settings is not None and kwargs:
            raise ValueError(f"give either settings or keyword settings, not both (got {sorted(kwargs)})")
        self.settings = s = settings if settings is not None else TeachingSettings(**kwargs)
        self.task: TeachingTask = build_task(
            s.dataset, s.data_path, s.max_val, s.n_probe, s.n_difficulty, s.temperatures,
            s.teacher_hidden, s.teacher_epochs, s.cache_dir)
        self.n_envs = B = check_int("n_envs", n_envs, 1, MAX_ENVS)
        check_memory(f"{B} teaching environments", B * env_bytes(s, self.task))
        self.families = s.families
        self.students = BatchedMLP(self.task.n_features, self.task.n_classes, (), B,
                                   specs=[f.student for f in self.families])
        self.generator = torch_generator(seed)
        C, P = self.task.n_classes, self.task.n_probe
        self.action_nvec = (len(self.task.bucket_names), len(s.lr_scales), 1 + len(s.temperatures))
        self.report_nvec = (s.report_vocab,) * s.report_len
        self.stats_dim = N_SCALARS + C + 2 * P * C
        self.teacher_obs_dim = 1 + s.report_len * s.report_vocab if s.student_speaks else self.stats_dim
        self.lr_values = torch.tensor(s.lr_scales, dtype=torch.float32) * s.base_lr
        self._family_data()
        self._val_onehot = self.task.val_onehot
        self._val_counts = self._val_onehot.sum(0).clamp_min(1.0)
        self.family = torch.zeros(B, dtype=torch.long)
        self.t = torch.zeros(B, dtype=torch.long)
        self.done = torch.ones(B, dtype=torch.bool)
        self.diverged = torch.zeros(B, dtype=torch.bool)
        self.reached = torch.zeros(B, dtype=torch.bool)
        self.accuracy = torch.zeros(B)
        self.per_class = torch.zeros(B, C)
        self.loss = torch.zeros(B)
        self.val_loss = torch.zeros(B)
        self.previous_val_loss = torch.zeros(B)
        self.grad_norm = torch.zeros(B)
        self.probe_probs = torch.zeros(B, P, C)
        self.message = torch.zeros(B, s.report_len, dtype=torch.long)
        self.last_directive: torch.Tensor | None = None
        self.is_reset = False

    def _family_data(self) -> None:
        """Each family's training labels (noisy ones) and bucket tables (kept examples only)."""
        task, families = self.task, self.families
        self._noisy = any(f.label_noise > 0 for f in families)
        if not any(f.label_noise > 0 or f.imbalance < 1 for f in families):
            # every family sees the task's own tables: a broadcast view, no copies
            self._labels = task.y_train.expand(len(families), -1)
            self._tables = task.bucket_table.expand(len(families), -1, -1)
            self._table_sizes = task.bucket_sizes.expand(len(families), -1)
            return
        labels, tables, sizes = [], [], []
        for family in families:
            labels.append(noisy_labels(task.y_train, task.n_classes, family))
            keep = kept_examples(task.y_train, task.n_classes, family)
            table = torch.zeros_like(task.bucket_table)
            size = torch.zeros_like(task.bucket_sizes)
            for bucket in range(len(task.bucket_names)):
                members = task.bucket_members(bucket)
                members = members[keep[members]]
                if len(members) == 0:  # a bucket the imbalance emptied falls back to all kept data
                    members = keep.nonzero().squeeze(1)
                table[bucket, : len(members)] = members
                size[bucket] = len(members)
            tables.append(table)
            sizes.append(size)
        self._labels, self._tables, self._table_sizes = torch.stack(labels), torch.stack(tables), torch.stack(sizes)

    # ----------------------------------------------------------------- stepping
    def reset(self, seed: int | None = None, family: torch.Tensor | np.ndarray | None = None,
              envs: torch.Tensor | np.ndarray | None = None) -> torch.Tensor:
        """Draw fresh students; returns the teacher observations ``(B, teacher_obs_dim)``.

        Args:
            seed: reseeds the environment's generator first.
            family: optional ``(B,)`` indices into ``self.families`` forcing each environment's
                family (the draw is made anyway, so other draws do not depend on forcing).
            envs: optional ``(B,)`` bool mask: only these environments start a new episode (the
                others go on unchanged; collectors reset finished environments this way). The
                first reset must reset them all.
        """
        mask = None if envs is None else self.check_envs(envs)
        if mask is not None and not self.is_reset and not bool(mask.all()):
            raise ValueError("the first reset must reset every environment (envs=None or all True)")
        if seed is not None:
            self.generator.manual_seed(int(seed))
        drawn = torch.randint(len(self.families), (self.n_envs,), generator=self.generator) \
            if len(self.families) > 1 else torch.zeros(self.n_envs, dtype=torch.long)
        if family is not None:
            drawn = self.check_family(family)
        if mask is None or bool(mask.all()):
            mask = None
            self.family = drawn
        else:
            self.family = torch.where(mask, drawn, self.family)
        self.students.init_(self.generator, mask=mask, kind=self.family)
        fresh = torch.ones(self.n_envs, dtype=torch.bool) if mask is None else mask
        for state in (self.t, self.done, self.diverged, self.reached, self.message, self.grad_norm):
            state[fresh] = 0
        if mask is None:
            self.last_directive = None
        self.is_reset = True
        # the others' students are unchanged, so their statistics are recomputed to the same values
        # (up to rounding: a student's slot in the batched products may have moved)
        val_loss = self._evaluate()
        self.loss = torch.where(fresh, val_loss, self.loss)
        self.previous_val_loss = torch.where(fresh, val_loss, self.previous_val_loss)
        return self.teacher_observation()

    def check_envs(self, envs: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Validate a ``(B,)`` boolean environment mask and return it as a bool tensor."""
        mask = torch.as_tensor(envs)
        if mask.dtype != torch.bool or mask.numel() != self.n_envs:
            raise ValueError(f"envs mask of dtype {mask.dtype} and shape {tuple(mask.shape)} is invalid; "
                             f"expected {self.n_envs} booleans")
        return mask.reshape(-1)

    def check_family(self, family: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Validate ``(B,)`` family indices and return them as a long tensor."""
        f = integer_tensor("family", family).reshape(-1)
        if f.numel() != self.n_envs or bool(((f < 0) | (f >= len(self.families))).any()):
            raise ValueError(f"family {f.tolist()} is invalid; expected {self.n_envs} indices in "
                             f"[0, {len(self.families)}) (the split's families: {[x.name for x in self.families]})")
        return f

    def report(self, tokens: torch.Tensor | np.ndarray) -> None:
        """Store the students' reports, ``(B, report_len)`` tokens in ``[0, report_vocab)``."""
        self._require_reset()
        tokens = integer_tensor("report", tokens)
        s = self.settings
        if tokens.numel() != self.n_envs * s.report_len:
            raise ValueError(f"report of shape {tuple(tokens.shape)} is invalid; expected "
                             f"({self.n_envs}, {s.report_len}) tokens")
        tokens = tokens.reshape(self.n_envs, s.report_len)
        if bool(((tokens < 0) | (tokens >= s.report_vocab)).any()):
            raise ValueError(f"report {tokens.tolist()} is invalid; expected {s.report_len} tokens in "
                             f"[0, {s.report_vocab}) per environment")
        self.message = tokens.clone()

    def step(self, directives: torch.Tensor | np.ndarray, lr: torch.Tensor | np.ndarray | None = None,
             envs: torch.Tensor | np.ndarray | None = None) -> dict[str, torch.Tensor]:
        """Apply one directive per environment: ``updates_per_step`` updates, then evaluate.

        Args:
            directives: ``(B, 3)`` integers ``(bucket, lr_level, target_level)`` within ``action_nvec``.
            lr: optional ``(B,)`` absolute learning rates replacing the directives' levels
                (schedules and tuned baselines use continuous rates).
            envs: optional ``(B,)`` bool mask of the environments to step; the others are left
                unchanged, as finished ones are (turn-based views step only the teacher's turns).

        Returns:
            ``(B,)`` tensors: ``reward``, ``terminated``, ``truncated``, ``diverged``, ``reached``,
            ``accuracy``, ``loss``, ``grad_norm`` (mean over the updates) and ``sgd_steps``
            (updates applied so far this episode).
        """
        self._require_reset()
        d = self.check_directives(directives)
        rates = self.lr_values[d[:, 1]] if lr is None else self.check_lr(lr)
        s, task = self.settings, self.task
        active = ~self.done if envs is None else ~self.done & self.check_envs(envs)
        rates = torch.where(active, rates, torch.zeros(()))
        # sample in the students' internal slot order: no large batch is permuted
        order = self.students.order
        family, bucket, level, rates = self.family[order], d[order, 0], d[order, 2], rates[order]
        sizes = self._table_sizes[family, bucket]
        bad = torch.zeros(self.n_envs, dtype=torch.bool)
        total = torch.zeros(self.n_envs)
        grad_norm = torch.zeros(self.n_envs)
        noisy = self._noisy and bool((level == 0).any())
        for _ in range(s.updates_per_step):
            u = torch.rand(self.n_envs, self.students.max_batch, generator=self.generator)
            pos = (u * sizes[:, None]).long().clamp_max(sizes[:, None] - 1)
            rows = self._tables[family[:, None], bucket[:, None], pos]
            targets = task.targets[level[:, None], rows]
            if noisy:  # "true labels" are the family's noisy labels; distillation targets stay clean
                labels = F.one_hot(self._labels[family[:, None], rows], task.n_classes).float()
                targets = torch.where((level == 0)[:, None, None], labels, targets)
            loss = self.students.sgd_step(task.x_train[rows], targets, rates, slot_order=True)
            bad |= ~torch.isfinite(loss)
            total += torch.nan_to_num(loss, nan=LOSS_CAP, posinf=LOSS_CAP)
            grad_norm += torch.nan_to_num(self.students.last_grad_norm, nan=GRAD_CAP, posinf=GRAD_CAP)
        bad = (bad | ~self.students.finite()) & active
        if bool(bad.any()):
            self.students.zero_(bad)  # quarantine: NaNs never reach observations
        previous = self.accuracy.clone()
        self.previous_val_loss = torch.where(active, self.val_loss, self.previous_val_loss)
        self._evaluate()
        self.loss = torch.where(active, total / s.updates_per_step, self.loss)
        self.grad_norm = torch.where(active, grad_norm / s.updates_per_step, self.grad_norm)
        self.t += active.long()
        reached = active & ~bad & self._target_reached()
        if s.reward == "time":
            reward = -active.float()
        else:
            reward = torch.where(active, self.accuracy - previous, torch.zeros(()))
        reward = torch.where(bad, torch.full((), -s.penalty), reward)
        terminated = reached | bad
        truncated = active & ~terminated & (self.t >= s.horizon)
        self.diverged |= bad
        self.reached |= reached
        self.done |= terminated | truncated
        self.last_directive = d
        return {"reward": reward, "terminated": terminated, "truncated": truncated, "diverged": bad,
                "reached": reached, "accuracy": self.accuracy.clone(), "loss": self.loss.clone(),
                "grad_norm": self.grad_norm.clone(), "sgd_steps": self.t * s.updates_per_step}

    def check_lr(self, lr: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Validate ``(B,)`` absolute learning rates (finite, >= 0) and return them as float32."""
        rates = torch.as_tensor(lr, dtype=torch.float64).reshape(-1)  # float64: the message shows the values given
        if rates.numel() != self.n_envs or not bool((torch.isfinite(rates) & (rates >= 0)).all()):
            raise ValueError(f"lr {rates.tolist()} is invalid; expected {self.n_envs} finite learning rates >= 0")
        return rates.float()

    def check_directives(self, directives: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Validate ``(B, 3)`` directives and return them as a long tensor."""
        d = integer_tensor("directives", directives)
        if d.numel() != 3 * self.n_envs:
            raise ValueError(f"directives of shape {tuple(d.shape)} are invalid; expected "
                             f"({self.n_envs}, 3)")
        d = d.reshape(self.n_envs, 3)
        high = torch.tensor(self.action_nvec)
        if bool(((d < 0) | (d >= high)).any()):
            raise ValueError(f"directive {d.tolist()} is out of range; expected 0 <= value < "
                             f"{list(self.action_nvec)} (bucket, lr_level, target_level)")
        return d

    def _target_reached(self) -> torch.Tensor:
        target = self.settings.target_accuracy
        if target is None:
            return torch.zeros(self.n_envs, dtype=torch.bool)
        return self.accuracy >= target - 1e-9

    def _require_reset(self) -> None:
        if not self.is_reset:
            raise ValueError("the environment must be reset before it is stepped")

    @torch.no_grad()
    def _evaluate(self) -> torch.Tensor:
        """Validation accuracy (overall, per class) and probe outputs; returns the validation loss."""
        logits = self.students.forward(self.task.x_val)
        # right when the true class's logit is the row's strict maximum (ties, e.g. a quarantined
        # all-zero student, count as wrong)
        labels = self.task.y_val.expand(self.n_envs, -1)[..., None]
        true_logit = logits.gather(-1, labels)
        maxes = logits.amax(-1, keepdim=True)
        correct = ((true_logit == maxes) & ((logits == maxes).sum(-1, keepdim=True) == 1)).squeeze(-1).float()
        self.accuracy = correct.mean(1)
        self.per_class = (correct @ self._val_onehot) / self._val_counts
        self.probe_probs = self.students.forward(self.task.probe_x).softmax(-1)
        cross_entropy = (log_sum_exp(logits, maxes) - true_logit).squeeze(-1)
        self.val_loss = torch.nan_to_num(cross_entropy.mean(1), nan=LOSS_CAP, posinf=LOSS_CAP)
        return self.val_loss

    # ----------------------------------------------------------------- observations
    def stats(self) -> torch.Tensor:
        """``(B, stats_dim)`` in [0, 1]: progress, training-loss feature, accuracy, gradient-norm
        feature, loss trend (0.5 + half the tanh of the last step's validation-loss decrease),
        per-class accuracy, student probe probabilities, teacher-model probe probabilities."""
        self._require_reset()
        progress = (self.t.float() / self.settings.horizon).clamp(0, 1)
        loss = (torch.log1p(self.loss.clamp(0, LOSS_CAP)) / math.log1p(LOSS_CAP)).clamp(0, 1)
        grad = (torch.log1p(self.grad_norm.clamp(0, GRAD_CAP)) / math.log1p(GRAD_CAP)).clamp(0, 1)
        trend = 0.5 + 0.5 * torch.tanh(self.previous_val_loss - self.val_loss)
        teacher = self.task.teacher_probe_probs.flatten().expand(self.n_envs, -1)
        parts = [progress[:, None], loss[:, None], self.accuracy[:, None], grad[:, None], trend[:, None],
                 self.per_class, self.probe_probs.flatten(1), teacher]
        return torch.cat(parts, dim=1).clamp(0, 1)

    def student_observation(self) -> torch.Tensor:
        """What the students see (``student_speaks`` mode): the statistics."""
        return self.stats()

    def teacher_observation(self) -> torch.Tensor:
        """The statistics (passive student), or progress and the one-hot report (speaking student)."""
        if not self.settings.student_speaks:
            return self.stats()
        progress = (self.t.float() / self.settings.horizon).clamp(0, 1)
        onehot = F.one_hot(self.message, self.settings.report_vocab).float().flatten(1)
        return torch.cat([progress[:, None], onehot], dim=1)

    def describe(self, index: int = 0) -> str:
        """Environment ``index`` as text (the ``ansi`` rendering)."""
        if not self.is_reset:
            return "(not reset)"
        s = self.settings
        lines = [f"student: {self.families[int(self.family[index])].name}",
                 f"step {int(self.t[index])}/{s.horizon}  val acc {float(self.accuracy[index]):.3f}"
                 f"  loss {float(self.loss[index]):.3f}"
                 + ("  [diverged]" if self.diverged[index] else "")
                 + ("  [target reached]" if self.reached[index] else "")]
        if s.student_speaks:
            lines.append(f"report: {' '.join(map(str, self.message[index].tolist()))}")
        if self.last_directive is not None:
            lines.append(f"directive: {self.describe_directive(self.last_directive[index])}")
        return "\n".join(lines)

    def describe_directive(self, directive: torch.Tensor) -> str:
        """One directive ``(bucket, lr_level, target_level)`` in words."""
        bucket, lr_level, target = (int(v) for v in directive)
        s = self.settings
        targets = "true labels" if target == 0 else f"distil T={s.temperatures[target - 1]}"
        return f"data={self.task.bucket_names[bucket]}  lr x{s.lr_scales[lr_level]}  targets={targets}"
