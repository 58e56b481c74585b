"""Referential-track methods trained by RL libraries: Stable-Baselines3 PPO and BenchMARL MAPPO.

Both train a sender and a receiver on the batched envs (:mod:`commchannels.wrappers.sb3`,
:mod:`commchannels.integrations.benchmarl`) for at most ``task.budget`` games, then play both
roles greedily on the env's own observations through
:class:`~commchannels.benchmark.referential.RolePolicies`. A *game* is one sender-receiver episode
(up to ``max_len`` tokens, then the guess) that ended while training; ``budget_used`` counts them.

* ``sb3-ppo``: two PPO models, each on its role's vector env with the other sampling as its
  partner, in turns of one rollout each (as ``examples/sb3_referential.py``); the games of both
  envs count, and training stops before a step could end more games than are left.
* ``benchmarl-mappo``: MAPPO through BenchMARL's ``Experiment`` on the two-group TorchRL env;
  ``max_n_frames`` is the budget times the longest game (``max_len + 1`` turns), and a callback
  stops the run before an iteration could end more games than are left (short messages make
  more games per frame). Discrimination games only (the integration's limit).
"""

from __future__ import annotations

import tempfile
import warnings
from typing import Any

import numpy as np

from commchannels.benchmark.referential import RolePolicies, make_game
from commchannels.benchmark.tasks import Task

# SB3: games per call of each role's env, PPO's rollout length and options over
# commchannels.wrappers.sb3.PPO_KWARGS (tuned on referential-small: many epochs over each small
# rollout make the most of a budget of games; seeds 0-2 reached 0.95-0.97 train accuracy)
SB3_ENVS = 64
SB3_N_STEPS = 8
SB3_PPO: dict[str, Any] = {"batch_size": 256, "n_epochs": 16}
# BenchMARL: games stepped together (each iteration collects max_len + 1 steps of each, about
# one game per env), minibatches per epoch, epochs, learning rate, entropy bonus
BENCHMARL_ENVS = 512
BENCHMARL_MINIBATCHES = 4
BENCHMARL_EPOCHS = 8
BENCHMARL_LR = 6e-3
BENCHMARL_ENTROPY = 0.03


def sb3_ppo(task: Task, seed: int) -> RolePolicies:
    """Stable-Baselines3 PPO, sender and receiver in turns, for ``task.budget`` games."""
    from stable_baselines3.common.callbacks import BaseCallback

    from commchannels.wrappers.sb3 import ppo_pair

    _check_games(task)

    class PlayedGames(BaseCallback):
        """Counts the games that end in either env; stops a rollout before a step could overspend."""

        def __init__(self) -> None:
            super().__init__()
            self.games = 0

        @property
        def left(self) -> bool:
            """Whether one more step of B games (at most B games end) fits in the budget."""
            return self.games + SB3_ENVS <= task.budget

        def _on_step(self) -> bool:
            self.games += int(np.sum(self.locals["dones"]))
            return self.left

    venvs, models = ppo_pair(task.env_id, task.env, SB3_ENVS, seed, n_steps=SB3_N_STEPS, **SB3_PPO)
    budget = PlayedGames()
    rollout = SB3_ENVS * SB3_N_STEPS
    while budget.left:
        for model in models.values():
            if budget.left:
                model.learn(rollout, callback=budget, reset_num_timesteps=False)
    sender, receiver = (venvs[role].venv.policy(models[role], deterministic=True) for role in ("sender", "receiver"))
    policy = RolePolicies(make_game(task), sender, receiver)
    policy.budget_used = budget.games
    return policy


def benchmarl_mappo(task: Task, seed: int) -> RolePolicies:
    """BenchMARL's MAPPO on the task's game (discrimination only), for ``task.budget`` games."""
    _check_games(task)
    # first: it aliases the torchrl name that benchmarl 1.5 imports
    from commchannels.integrations.benchmarl import (
        BudgetSpent,
        GameBudget,
        ReferentialTaskClass,
        experiment_config,
        make_experiment,
        role_policy,
    )

    game = make_game(task)
    bench_task = ReferentialTaskClass(name=task.env_id.upper(), config=dict(task.env))  # the name is the env id
    steps = game.max_len + 1  # turns of the longest game
    iterations = task.budget // BENCHMARL_ENVS
    if iterations < 1:
        raise ValueError(f"task {task.name!r} has a budget of {task.budget} games; benchmarl-mappo needs at least "
                         f"{BENCHMARL_ENVS} (the games of one iteration)")
    budget = GameBudget(task.budget)
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*missing transforms required by the policy.*")
        frames = BENCHMARL_ENVS * steps
        config = experiment_config(folder, envs=BENCHMARL_ENVS, frames=frames, minibatches=BENCHMARL_MINIBATCHES,
                                   epochs=BENCHMARL_EPOCHS, lr=BENCHMARL_LR, max_frames=iterations * frames,
                                   eval_games=1)
        experiment = make_experiment(bench_task, "mappo", config, seed, entropy=BENCHMARL_ENTROPY, callbacks=[budget])
        try:
            experiment.run()
        except BudgetSpent:
            experiment.close()
    policy = RolePolicies(game, role_policy(experiment, "sender"), role_policy(experiment, "receiver"))
    policy.budget_used = budget.games
    return policy


def _check_games(task: Task) -> None:
    if task.track != "referential" or task.budget_unit != "games":
        raise ValueError(f"task {task.name!r} ({task.track}, budget in {task.budget_unit}) is not allowed; "
                         "expected a referential task with a budget in games")
