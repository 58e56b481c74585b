"""The benchmark protocol: a method is trained under a task's budget, then the task evaluates it.

**The method interface.** A method is any callable ``make(task, seed) -> policy``: a trainer
function, or a policy class whose constructor takes ``(task, seed)``. It must train within
``task.budget`` (in ``task.budget_unit``) using only the task's training split, seeded by
``seed``, and return the policy that the task's track evaluates:

* ``referential``: a :class:`~commchannels.benchmark.referential.ReferentialPolicy`
  (``send(objects) -> message`` and ``receive(message, candidates) -> guesses``), or role
  policies over the batched env's observations wrapped by
  :class:`~commchannels.benchmark.referential.RolePolicies` (what SB3 and BenchMARL give);
* ``teaching``: a teacher policy of :mod:`commchannels.training.teaching_baselines`
  (``policy(core) -> directives``);
* ``exchange``: an :class:`~commchannels.benchmark.exchange.ExchangeOutcome` (the workers'
  models and the bytes they sent).

A policy may set ``budget_used`` (an int, in the task's unit) to report what it trained on;
the protocol records it, and refuses a method that went over the budget. Methods are named on
the command line by a built-in name (:data:`BUILTIN`) or as ``package.module:attribute`` (or
``path/to/file.py:attribute``).

The protocol owns everything else: the seeds (it also seeds the global generators of torch,
numpy and ``random`` with ``seed`` before ``make``, and restores them afterwards), the budget
check on ``budget_used``, the clock (``train_seconds``: the time of ``make``, which includes
whatever the method does in it; the protocol's evaluation is timed apart), the evaluation
(the same games or students for every method; the method gets a copy of the task, so nothing
it changes reaches the evaluation), and the result row.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from commchannels.benchmark.tasks import TRACKS, Task
from commchannels.registry import load_env_module
from commchannels.seeding import seed_everything

Method = Callable[[Task, int], Any]
REPO_ROOT = Path(__file__).resolve().parents[2]  # where examples/ lives in a checkout

# built-in methods: name -> {track: "module:attribute"} (each task lists those of its reference scores)
BUILTIN: dict[str, dict[str, str]] = {
    "random": {"referential": "commchannels.benchmark.referential:random_policy",
               "teaching": "commchannels.benchmark.teaching:random_directives"},
    "reinforce": {"referential": "commchannels.benchmark.referential:reinforce"},
    "gumbel": {"referential": "commchannels.benchmark.referential:gumbel"},
    "continuous": {"referential": "commchannels.benchmark.referential:continuous"},
    "sb3-ppo": {"referential": "commchannels.benchmark.rl_methods:sb3_ppo"},
    "benchmarl-mappo": {"referential": "commchannels.benchmark.rl_methods:benchmarl_mappo"},
    "plain-sgd": {"teaching": "commchannels.benchmark.teaching:plain_sgd"},
    "tuned-lr": {"teaching": "commchannels.benchmark.teaching:tuned_lr"},
    "tuned-lr-per-family": {"teaching": "commchannels.benchmark.teaching:tuned_lr_per_family"},
    "tuned-cosine": {"teaching": "commchannels.benchmark.teaching:tuned_cosine"},
    "blind-teacher": {"teaching": "commchannels.benchmark.teaching:blind_teacher"},
    "sighted-teacher": {"teaching": "commchannels.benchmark.teaching:sighted_teacher"},
    "independent": {"exchange": "commchannels.benchmark.exchange:independent"},
    "sync-ddp": {"exchange": "commchannels.benchmark.exchange:sync_ddp"},
    "powersgd": {"exchange": "commchannels.benchmark.exchange:powersgd"},
    "diloco": {"exchange": "commchannels.benchmark.exchange:diloco"},
    "codistill": {"exchange": "commchannels.benchmark.exchange:codistill"},
}
EVALUATORS = {track: f"commchannels.benchmark.{track}:evaluate" for track in TRACKS}


def load_attribute(spec: str) -> Any:
    """``package.module:attribute`` or ``path/to/file.py:attribute``, imported."""
    module_name, sep, attribute = spec.rpartition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"method {spec!r} is neither a built-in method ({sorted(BUILTIN)}) nor "
                         "'package.module:attribute' / 'path/to/file.py:attribute'")
    if module_name.endswith(".py"):
        path = Path(module_name).expanduser()
        if not path.is_file():
            raise ValueError(f"method {spec!r}: no file {str(path)!r}")
        module = load_env_module(path)  # imported once, by its file name, as --env-modules files are
    else:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            raise ValueError(f"method {spec!r}: cannot import {module_name!r} ({err})") from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ValueError(f"method {spec!r}: module {module_name!r} has no attribute {attribute!r}") from None


def resolve_method(method: str, task: Task) -> Method | None:
    """The callable of ``method`` for ``task``; ``None`` for a built-in method that does not apply
    to the task's track (a user's method is offered every task it is asked for)."""
    if method in BUILTIN:
        entry = BUILTIN[method].get(task.track)
        return None if entry is None else load_attribute(entry)
    found = load_attribute(method)
    if not callable(found):
        raise ValueError(f"method {method!r} is not callable; expected make(task, seed) -> policy")
    return found


def _check_budget(method: str, task: Task, used: Any) -> None:
    """A method that says what it trained on must have kept to the budget."""
    if used is None:
        return
    if not isinstance(used, int) or isinstance(used, bool) or used < 0:
        raise ValueError(f"method {method!r} set budget_used={used!r}; expected an int >= 0 ({task.budget_unit})")
    if used > task.budget:
        raise ValueError(f"method {method!r} trained on {used:,} {task.budget_unit}, over the budget of {task.key} "
                         f"({task.budget:,}); expected at most the budget")


def method_label(method: str) -> str:
    """How ``method`` is named in result rows: a file's method by its file name and attribute
    (``mine.py:make``, not the whole path), any other as given."""
    module, sep, attribute = method.rpartition(":")
    return f"{Path(module).name}:{attribute}" if sep and module.endswith(".py") else method


def import_task_modules(task: Task) -> None:
    """Import the files that register the task's game (paths relative to the repository root)."""
    for relative in task.env_modules:
        path = REPO_ROOT / relative
        if not path.is_file():
            raise ValueError(f"task {task.name!r} needs {relative} (a game registered in the repository's "
                             f"examples); not found under {REPO_ROOT}: run from a checkout of commchannels")
        load_env_module(str(path))


def run_one(task: Task, method: str, seed: int, threads: int = 1, label: str | None = None) -> dict[str, Any] | None:
    """Train ``method`` on ``task`` with ``seed`` and evaluate it: one result row (``None`` when a
    built-in method does not apply to the task). The row names the method ``label`` (default
    :func:`method_label`) and keeps what was run as ``entry``."""
    make = resolve_method(method, task)
    if make is None:
        return None
    if threads < 1:
        raise ValueError(f"threads={threads} is not allowed; expected at least 1 torch thread")
    import_task_modules(task)
    evaluate = load_attribute(EVALUATORS[task.track])
    saved = torch.get_num_threads(), torch.get_rng_state(), np.random.get_state(), random.getstate()
    torch.set_num_threads(threads)
    seed_everything(seed)  # a method drawing from the global generators is seeded too, whatever ran before
    try:
        start = time.perf_counter()
        # a copy: nothing a method changes in its task reaches the evaluation or the next run
        policy = make(dataclasses.replace(task, env=copy.deepcopy(task.env)), seed)
        train_seconds = time.perf_counter() - start
        budget_used = getattr(policy, "budget_used", None)
        _check_budget(method, task, budget_used)
        start = time.perf_counter()
        metrics = evaluate(task, policy)
        eval_seconds = time.perf_counter() - start
    finally:
        torch.set_num_threads(saved[0])
        torch.set_rng_state(saved[1])
        np.random.set_state(saved[2])
        random.setstate(saved[3])
    value = metrics[task.primary]
    return {"task": task.key, "track": task.track, "method": label or method_label(method), "entry": method,
            "seed": seed,
            "score": task.score(value), **metrics, "budget": task.budget, "budget_unit": task.budget_unit,
            "budget_used": budget_used, "train_seconds": train_seconds,
            "eval_seconds": eval_seconds}
