"""
# Teaching

| Import             | `from commchannels.envs import teaching_v0`                          |
|--------------------|----------------------------------------------------------------------|
| Actions            | MultiDiscrete (teacher directive; student report)                    |
| Parallel API       | Yes                                                                  |
| Manual control     | No                                                                   |
| Agents             | `['teacher']` (passive student) or `['student', 'teacher']`         |
| Number of agents   | 1 or 2                                                               |
| Action shape       | teacher `(3,)`, student `(report_len,)`                              |
| Observation shape  | Box `(D,)` in [0, 1] (see below)                                     |
| State shape        | Box: every agent's observation, concatenated                         |
| Batched core       | `commchannels.envs.teaching.TeachingCore`                            |
| Gymnasium ids      | `commchannels/Teaching-v0` (teacher, passive student); also the      |
|                    | registry's role adapter `commchannels/Teaching-teacher-v0`           |

A *teacher* customises the training of a *student* (Lacaille 2018, §teaching). Each episode
draws a randomly initialised MLP student of a *family* from the preset `students`, trained inside
the environment on a real data set (`dataset`: scikit-learn's digits, MNIST-1D, or MNIST from IDX files in
`data_path`). A teacher *model* (an MLP pre-trained once on the same task and cached on disk
with a checksum, see `commchannels.envs.teaching.pretrained`) supplies difficulty scores and
distillation targets. At every step the teacher issues a *training directive*, the environment
applies it for `updates_per_step` SGD updates of the student (`batch_size` examples each), then
evaluates the student on the validation set (the data set's test split, at most `max_val`).

### Students
`students` names a distribution over student families, `split` which of its families
(`"train"`, or `"held-out"`: families a teacher never meets in training). Each reset draws the
family uniformly from the split (`commchannels.envs.teaching.families` documents every family):
- `"mlp-fixed"` (default): one family, the MLP of `hidden` trained by plain SGD with ReLU on
  batches of `batch_size`; `lr_scales` defaults to (0.5, 1, 2, 4, 8).
- `"mlp-arch"`: the network and optimiser vary: SGD, SGD with momentum 0.9 or Adam; ReLU or
  tanh; one or two hidden layers of 16 or 32 units; initialisation scale 1 or 3; batches of 8
  or 16. Held out: three hidden layers, ELU, RMSprop (each unseen in training).
- `"mlp-data"`: the data conditions vary for an SGD ReLU MLP of 32 units: label noise (a fixed
  fraction of training labels moved to another class; distillation targets stay clean), class
  imbalance (class c keeps `imbalance ** (c / (C - 1))` of its examples), batch size. Held out:
  unseen noise levels and imbalance combinations.
The varied presets default to a wide learning-rate grid, `lr_scales` (0.01, 0.03, ..., 10)
x `base_lr`: the best rate of an Adam student and of an SGD student differ a hundredfold. The
students of a batch (the vector API, `TeachingCore`) train as one padded computation.

With `student_speaks=True` the student is an agent too: before each directive it sends a report
of `report_len` tokens from `report_vocab` symbols, and the teacher sees only that report (and
the progress) instead of the statistics: a two-way, bandwidth-limited channel.

### Observations
Float32 `Box(0, 1)`. Passive student, teacher (D = 5 + C + 2·n_probe·C): progress
`step / horizon`; recent training loss as `log1p(loss) / log1p(100)`; validation accuracy;
gradient norm as `log1p(norm) / log1p(1000)`; loss trend `0.5 + tanh(decrease of the validation
loss over the last directive) / 2`; per-class validation accuracy (C); the student's predicted
probabilities on the `n_probe` fixed probe examples (its low-bandwidth channel); the teacher
model's probabilities on the same probes.
Speaking student: the student observes those statistics; the teacher observes progress and the
one-hot report (D = 1 + report_len·report_vocab).

### Actions
- teacher: `MultiDiscrete([1 + C + n_difficulty, len(lr_scales), 1 + len(temperatures)])`:
  data bucket (0 all data, 1 + c class c, 1 + C + d difficulty level d by the teacher model's
  confidence, 0 = easiest), learning rate `base_lr * lr_scales[level]`, targets (0 true labels,
  1 + j the teacher model's softmax at temperature `temperatures[j]`: distillation).
- student: `MultiDiscrete([report_vocab] * report_len)`.
Actions are integers (an int, a numpy integer or integer array, a list or tuple of ints);
floats (even `2.0`), bools, NaN, strings and out-of-range values raise `ValueError`. In the
Parallel view with a speaking student, steps alternate (report, directive); only the acting
agent's action counts (and is checked) and `infos[agent]["is_turn"]` says whether the agent's
next action counts. `flatten=True` (`env()` and `parallel_env()`) gives every agent one
padded Box observation with an agent indicator and one Discrete action space (the MultiDiscrete
actions numbered in mixed radix; see `commchannels.wrappers.flat`), for SuperSuit and
parameter-sharing learners.

### Rewards
Shared by all agents, after each directive: `reward="time"`: -1 per directive until the target
is reached (the return is minus the number of directives); `reward="gain"`: the change in
validation accuracy. A directive that makes the student diverge (non-finite loss or weights)
gives `-divergence_penalty` (default `horizon` for "time", 1 for "gain") and ends the episode.
`infos[agent]` after a directive: `accuracy`, `loss`, `sgd_steps`, `diverged`, `reached`; in the
Parallel view every step's (and reset's) infos carry these (the current values) and `is_turn`,
so they keep one set of keys (TorchRL's `PettingZooWrapper` needs that). `state()` is every
agent's observation concatenated (`state_space`).

### Episode end
Terminates when validation accuracy reaches `target_accuracy` or the student diverges
(`infos[agent]["diverged"] is True`); truncates after `horizon` directives.

### Arguments
```python
teaching_v0.env(dataset="digits", data_path=None, students="mlp-fixed", split="train", hidden=(32,),
                batch_size=16, base_lr=0.1, lr_scales=None, temperatures=(2.0,), n_difficulty=3,
                updates_per_step=10, horizon=40, target_accuracy=0.9, reward="time",
                divergence_penalty=None, n_probe=10, max_val=1000, student_speaks=False,
                report_len=4, report_vocab=8, teacher_hidden=(64,), teacher_epochs=30,
                cache_dir=None, render_mode=None, flatten=False)
commchannels.make("teaching_v0", parallel=True, debug=True)  # tiny and fast
gymnasium.make("commchannels/Teaching-v0", horizon=20)      # after `import commchannels`
```
`render_mode="ansi"` renders text, `"rgb_array"` the statistics as a grey strip (4 frames per
second in `metadata["render_fps"]`); `flatten=True` as above. All randomness (student
initialisation, batches) comes from the environment's own generator; `reset(seed=...)` reseeds it.

### Version history
- v0: initial release. Later within v0 (rules and spaces unchanged): `rgb_array` rendering,
  `state()`, `flatten=True`, the Parallel view's `infos["is_turn"]` with the same keys every step.
  Then `students` / `split` (student families; the default keeps the v0 student) and two more
  observation features (gradient norm, loss trend): D grew from 3 + C + 2·n_probe·C.
"""

from __future__ import annotations

from typing import Any

from commchannels.config import check_bool
from commchannels.envs.teaching.aec import TeachingAECEnv
from commchannels.envs.teaching.parallel import TeachingParallelEnv
from commchannels.envs.teaching.settings import TeachingSettings
from commchannels.envs.turns import OrderEnforcing


def raw_env(*, render_mode: str | None = None, **kwargs: Any) -> TeachingAECEnv:
    """The unwrapped AEC environment (keyword arguments: see the module docstring)."""
    return TeachingAECEnv(TeachingSettings(**kwargs), render_mode=render_mode)


def env(*, flatten: bool = False, **kwargs: Any) -> Any:
    """The AEC environment with PettingZoo's order-enforcing wrapper (``flatten=True``: flat
    observations, one Discrete action space, agent indicators; :mod:`commchannels.wrappers.flat`)."""
    from commchannels.wrappers.flat import flatten_aec

    aec = raw_env(**kwargs)
    return OrderEnforcing(flatten_aec(aec) if check_bool("flatten", flatten) else aec)


def parallel_env(*, render_mode: str | None = None, flatten: bool = False, **kwargs: Any) -> Any:
    """The Parallel environment (keyword arguments: see the module docstring)."""
    from commchannels.wrappers.flat import flatten_parallel

    penv = TeachingParallelEnv(TeachingSettings(**kwargs), render_mode=render_mode)
    return flatten_parallel(penv) if check_bool("flatten", flatten) else penv
