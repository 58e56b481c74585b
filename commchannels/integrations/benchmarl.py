"""BenchMARL tasks for the referential games (``pip install -e '.[benchmarl]'``, then
``pip install --no-deps benchmarl==1.5.2``: see *Compatibility* below).

:class:`ReferentialTask` is a BenchMARL task enum, one member per registered discrimination game
(the member's name, lower-cased, is the env id). Its :class:`ReferentialTaskClass` builds
:class:`commchannels.integrations.torchrl.ReferentialTorchRLEnv`, the batched TorchRL view of the
game, so BenchMARL's ``Experiment`` trains its algorithms on it::

    from commchannels.integrations.benchmarl import ReferentialTask  # before benchmarl: the shim
    from benchmarl.experiment import Experiment
    task = ReferentialTask.REFERENTIAL_V0.get_task({"n_attributes": 2, "n_values": 4, "n_candidates": 3})
    Experiment(task=task, algorithm_config=..., model_config=..., critic_model_config=..., seed=0,
               config=...).run()

One TorchRL transform (:class:`TurnFeatures`) sits between the env and BenchMARL; it encodes
observations and turns, it does not play the game:

- BenchMARL's MLPs read flat float vectors, so each group's nested observation becomes one
  ``(group, "features")`` vector: objects flattened, the message one-hot per position;
- only the acting agent's action counts, so ``(group, "action_mask")`` allows every action on
  that agent's turn and only action 0 otherwise: the ignored action is then certain (its
  log-probability is 0), so it adds no noise to the policy gradient.

BenchMARL evaluates on ``evaluation_episodes`` envs and keeps the first game of each, so the
receiver's mean evaluation return is the pair's greedy accuracy (the receiver's reward is 1 for
a right guess, else 0; a ``length_cost`` lowers only the sender's). :func:`greedy_accuracy` measures
it directly, on either split.

Compatibility: benchmarl 1.5.x (the PyPI releases) declares ``torchrl>=0.10,<0.12`` and imports
``torchrl.collectors.SyncDataCollector`` (``benchmarl/experiment/experiment.py``, line 26), which
torchrl 0.14 (the release that installs beside torch 2.13) renamed ``Collector``, keeping the
keyword arguments BenchMARL passes. Importing this module aliases the old name
(:func:`install_torchrl_shim`) and then imports benchmarl, so import it before benchmarl. pip
cannot install benchmarl 1.5.2 beside torchrl 0.14.1 (the declared range), hence ``--no-deps``;
of its other requirements only ``hydra-core`` is used (``torchvision`` and ``av`` serve video
logging). Only discrimination games are supported: BenchMARL's discrete policies sample one
categorical action per agent, and a reconstruction receiver's action is one per attribute.

Training helpers: :func:`experiment_config` and :func:`make_experiment` (BenchMARL's defaults
resized for these tiny games on a CPU), :class:`GameBudget` (stops a run within a budget of games),
and :func:`role_policy` (a trained group's greedy actions on the batched core's observations: the
role policies of :class:`commchannels.benchmark.referential.RolePolicies`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from math import prod
from typing import Any

import torch
import torch.nn.functional as F
import torchrl.collectors
from tensordict import TensorDictBase
from torchrl.data import Categorical, Composite, Unbounded
from torchrl.envs import EnvBase, Transform, TransformedEnv
from torchrl.envs.utils import ExplorationType, set_exploration_type

from commchannels.envs.referential.game import ReferentialGame
from commchannels.integrations.torchrl import GROUPS, ReferentialTorchRLEnv, make_env


def install_torchrl_shim() -> None:
    """Alias ``torchrl.collectors.SyncDataCollector`` to torchrl 0.14's ``Collector`` (the class
    was renamed; BenchMARL 1.5.x imports the old name). Does nothing where the name exists."""
    if not hasattr(torchrl.collectors, "SyncDataCollector"):
        torchrl.collectors.SyncDataCollector = torchrl.collectors.Collector


install_torchrl_shim()

from benchmarl.algorithms import IppoConfig, MappoConfig  # noqa: E402  (needs the shim)
from benchmarl.environments.common import Task, TaskClass  # noqa: E402
from benchmarl.experiment import Experiment, ExperimentConfig  # noqa: E402
from benchmarl.experiment.callback import Callback  # noqa: E402
from benchmarl.models.mlp import MlpConfig  # noqa: E402
from tensordict import TensorDict  # noqa: E402

ALGORITHMS = {"ippo": IppoConfig, "mappo": MappoConfig}

# what each group reads, in this order: the parts of (group, "observation")
_PARTS = {"sender": ("objects", "message"), "receiver": ("message", "candidates")}


class TurnFeatures(Transform):
    """Adds ``(group, "features")`` (one float vector per agent) and ``(group, "action_mask")``
    (every action on the agent's turn, only action 0 otherwise) to a referential env's outputs.

    Args:
        game: the game of the env it is appended to (it gives the sizes).
    """

    def __init__(self, game: ReferentialGame) -> None:
        super().__init__()
        self.vocab_size = game.vocab_size
        self.n_actions = {"sender": game.vocab_size, "receiver": game.n_candidates}
        sizes = {"objects": game.sender_views * prod(game.object_shape),
                 "candidates": game.n_candidates * prod(game.object_shape),
                 "message": game.max_len * (game.vocab_size + 1)}  # one-hot of token + 1, 0 = nothing sent
        self.n_features = {group: sum(sizes[part] for part in _PARTS[group]) for group in GROUPS}

    def _features(self, group: str, observation: TensorDictBase) -> torch.Tensor:
        parts = []
        for part in _PARTS[group]:
            value = observation.get(part)
            if part == "message":
                value = F.one_hot(value, self.vocab_size + 1)
            parts.append(value.flatten(2).float())  # [B, 1, ...] -> [B, 1, n]
        return torch.cat(parts, dim=-1)

    def _call(self, next_tensordict: TensorDictBase) -> TensorDictBase:
        for group in GROUPS:
            turn = next_tensordict.get((group, "mask"))
            next_tensordict.set((group, "features"), self._features(group, next_tensordict.get((group, "observation"))))
            only_first = torch.zeros(self.n_actions[group], dtype=torch.bool, device=turn.device)
            only_first[0] = True
            next_tensordict.set((group, "action_mask"), turn[..., None] | only_first)
        return next_tensordict

    def _reset(self, tensordict: TensorDictBase, tensordict_reset: TensorDictBase) -> TensorDictBase:
        return self._call(tensordict_reset)

    def transform_observation_spec(self, observation_spec: Composite) -> Composite:
        for group in GROUPS:
            spec = observation_spec[group]
            spec["features"] = Unbounded((*spec.shape, self.n_features[group]), device=spec.device)
            spec["action_mask"] = Categorical(2, (*spec.shape, self.n_actions[group]), dtype=torch.bool,
                                              device=spec.device)
        return observation_spec


class ReferentialTaskClass(TaskClass):
    """A referential game as a BenchMARL task. ``config`` holds the game's options (the keywords
    of ``commchannels.make(env_id, ...)``; ``debug=True`` starts from the registry's small game)
    and, optionally, ``split``: ``"train"`` or ``"test"`` objects, for training and evaluation alike."""

    def get_env_fun(self, num_envs: int, continuous_actions: bool, seed: int | None,
                    device: Any) -> Callable[[], EnvBase]:
        if continuous_actions:
            raise ValueError("continuous_actions=True is not supported: referential actions are discrete "
                             "(set the experiment's prefer_continuous_actions=False)")
        config, env_id = _checked(copy.deepcopy(self.config)), self.name.lower()
        return lambda: make_env(env_id, batch_size=num_envs, seed=seed, device=device, **config)

    def get_env_transforms(self, env: EnvBase) -> list[Transform]:
        return [TurnFeatures(_game(env))]

    def supports_continuous_actions(self) -> bool:
        return False

    def supports_discrete_actions(self) -> bool:
        return True

    def max_steps(self, env: EnvBase) -> int:
        return _game(env).max_len + 1  # one game: up to max_len tokens, then the guess

    def has_render(self, env: EnvBase) -> bool:
        return False

    def group_map(self, env: EnvBase) -> dict[str, list[str]]:
        return {group: [group] for group in GROUPS}

    # BenchMARL's specs describe one game: without the env's batch dimension
    def observation_spec(self, env: EnvBase) -> Composite:
        return _only(env.full_observation_spec_unbatched, "features")

    def action_mask_spec(self, env: EnvBase) -> Composite:
        return _only(env.full_observation_spec_unbatched, "action_mask")

    def info_spec(self, env: EnvBase) -> Composite | None:
        return None

    def state_spec(self, env: EnvBase) -> Composite | None:
        return None  # MAPPO's critics then read their group's observations

    def action_spec(self, env: EnvBase) -> Composite:
        return env.full_action_spec_unbatched

    @staticmethod
    def env_name() -> str:
        return "commchannels"

    @staticmethod
    def log_info(batch: TensorDictBase) -> dict[str, float]:
        """The collected batch's accuracy: the receivers' mean reward over the games that ended."""
        done = batch.get(("next", "done"))[..., 0]
        if not bool(done.any()):
            return {}
        reward = batch.get(("next", "receiver", "reward"))[..., 0, 0]
        return {"collection/accuracy": float(reward[done].mean())}


class ReferentialTask(Task):
    """The registry's referential discrimination games as BenchMARL tasks. ``get_task(config)``
    takes the game's options; without a config the registry's defaults are used (BenchMARL's YAML
    task files live in its own package, which has none for these games)."""

    REFERENTIAL_V0 = None
    REFERENTIAL_DIGITS_V0 = None

    @staticmethod
    def associated_class() -> type[ReferentialTaskClass]:
        return ReferentialTaskClass

    def get_task(self, config: dict[str, Any] | None = None) -> ReferentialTaskClass:
        return self.associated_class()(name=self.name, config=dict(config or {}))


def make_task_env(task: ReferentialTaskClass, games: int, split: str | None = None,
                  seed: int | None = None) -> TransformedEnv:
    """``games`` games of ``task`` as BenchMARL's policies see them (``split`` overrides the task's)."""
    config = dict(task.config) if split is None else {**task.config, "split": split}
    env = make_env(task.name.lower(), batch_size=games, seed=seed, **_checked(config))
    return TransformedEnv(env, TurnFeatures(env.game))


@torch.no_grad()
def greedy_accuracy(policy: Callable, task: ReferentialTaskClass, games: int = 1000, split: str | None = None,
                    seed: int = 0) -> float:
    """The share of ``games`` fresh games that ``policy`` (e.g. ``experiment.policy``) wins with its
    most likely actions: one game per env, scored by the receiver's reward when it ends."""
    env = make_task_env(task, games, split=split, seed=seed)
    with set_exploration_type(ExplorationType.DETERMINISTIC):
        rollout = env.rollout(_game(env).max_len + 1, policy, break_when_any_done=False)
    done = rollout.get(("next", "done"))[..., 0]  # [games, T]: every first game ends within max_len + 1 steps
    first_end = done.int().argmax(dim=1, keepdim=True)
    reward = rollout.get(("next", "receiver", "reward"))[..., 0, 0]
    return float(reward.gather(1, first_end).mean())


# ---------------------------------------------------------------------------- training
class BudgetSpent(BaseException):
    """Raised by a callback to stop a run. BenchMARL's ``run()`` cannot be shortened once started
    (its iteration range and its collector's frame total are fixed before the first iteration)
    and reports an ``Exception`` as a failure; a ``BaseException`` passes through it. Catch it,
    then call ``experiment.close()``."""


class GameBudget(Callback):
    """Counts the games that end in the collected batches and raises :class:`BudgetSpent` after
    the training of an iteration when the next one could end more games than ``budget`` leaves
    (a game takes at least two turns, so an iteration of ``envs`` envs stepped ``steps`` times
    ends at most ``envs * ceil(steps / 2)`` games)."""

    def __init__(self, budget: int) -> None:
        super().__init__()
        self.budget, self.games = budget, 0

    def on_batch_collected(self, batch: TensorDictBase) -> None:
        self.games += int(batch.get(("next", "done")).sum())

    def on_train_end(self, training_td: TensorDictBase, group: str) -> None:
        config, on_policy = self.experiment.config, self.experiment.on_policy
        envs = config.n_envs_per_worker(on_policy)
        steps = config.collected_frames_per_batch(on_policy) // envs
        if group == list(self.experiment.train_group_map)[-1] and self.games + envs * -(-steps // 2) > self.budget:
            raise BudgetSpent(f"{self.games} games played (budget {self.budget})")


def experiment_config(folder: str, envs: int, frames: int, minibatches: int, epochs: int, lr: float,
                      max_iters: int | None = None, max_frames: int | None = None, eval_every: int | None = None,
                      eval_games: int = 500) -> ExperimentConfig:
    """BenchMARL's defaults, resized for a tiny game on a CPU.

    Args:
        folder: where BenchMARL saves (its JSON file of evaluations, when it evaluates).
        envs: games stepped together while collecting.
        frames: frames (env steps, all envs) collected per iteration.
        minibatches: minibatches per epoch.
        epochs: passes over each collected batch.
        lr: the learning rate.
        max_iters: iterations to run (or ``max_frames``).
        max_frames: frames to collect in all.
        eval_every: iterations between BenchMARL's greedy evaluations (``None``: none).
        eval_games: games of each evaluation.
    """
    config = ExperimentConfig.get_from_yaml()
    config.prefer_continuous_actions = False
    config.lr = lr
    config.gamma = 1.0  # one reward, at the end of a game of a few steps
    config.on_policy_n_envs_per_worker = envs
    config.on_policy_collected_frames_per_batch = frames
    config.on_policy_minibatch_size = frames // minibatches
    config.on_policy_n_minibatch_iters = epochs
    config.max_n_frames, config.max_n_iters = max_frames, max_iters
    config.evaluation = eval_every is not None
    config.evaluation_interval = frames * (eval_every or 1)
    config.evaluation_episodes = eval_games
    config.loggers = []  # BenchMARL evaluates only when it logs: the JSON file suffices
    config.create_json = eval_every is not None
    config.render = False
    config.save_folder = folder
    config.checkpoint_at_end = False
    return config


def make_experiment(task: ReferentialTaskClass, algorithm: str, config: ExperimentConfig, seed: int,
                    entropy: float = 0.03, callbacks: list[Callback] | None = None) -> Experiment:
    """BenchMARL's ``Experiment`` of ``algorithm`` (``"ippo"`` or ``"mappo"``, entropy bonus
    ``entropy``) on ``task``, with two-layer tanh MLPs of 64 units for actors and critics."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm={algorithm!r} is not allowed; expected one of {sorted(ALGORITHMS)}")
    model = MlpConfig(num_cells=[64, 64], layer_class=torch.nn.Linear, activation_class=torch.nn.Tanh)
    algorithm_config = ALGORITHMS[algorithm].get_from_yaml()
    algorithm_config.entropy_coef = entropy
    return Experiment(task=task, algorithm_config=algorithm_config, model_config=model, critic_model_config=model,
                      seed=seed, config=config, callbacks=callbacks)


def role_policy(experiment: Experiment, group: str) -> Callable[[dict[str, torch.Tensor]], torch.Tensor]:
    """``group``'s trained policy as a batched role policy: the core's raw observations of that
    role (``core.observation(group)``, leading dimension B) -> ``(B,)`` most likely actions."""
    features = TurnFeatures(_game(experiment.test_env))
    actor = experiment.group_policies[group]
    allowed = torch.ones(1, 1, features.n_actions[group], dtype=torch.bool)  # it is always this role's turn

    @torch.no_grad()
    def act(observation: dict[str, torch.Tensor]) -> torch.Tensor:
        b = next(iter(observation.values())).shape[0]
        parts = TensorDict({key: value[:, None] for key, value in observation.items()}, batch_size=[b, 1])
        inputs = TensorDict({group: {"features": features._features(group, parts),
                                     "action_mask": allowed.expand(b, 1, -1)}}, batch_size=[b])
        with set_exploration_type(ExplorationType.DETERMINISTIC):
            return actor(inputs).get((group, "action")).reshape(b)

    return act


def _checked(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` unchanged, unless it asks for a game BenchMARL cannot play."""
    if config.get("mode", "discrimination") != "discrimination":
        raise ValueError(f"mode={config['mode']!r} is not supported: BenchMARL's discrete policies sample one "
                         "categorical action per agent; expected mode='discrimination'")
    return config


def _game(env: EnvBase) -> ReferentialGame:
    """The game under ``env`` (a ReferentialTorchRLEnv, possibly transformed)."""
    base = env.base_env if isinstance(env, TransformedEnv) else env
    if not isinstance(base, ReferentialTorchRLEnv):
        raise TypeError(f"expected a ReferentialTorchRLEnv or a TransformedEnv of one, got {type(base).__name__}")
    return base.game


def _only(spec: Composite, key: str) -> Composite:
    """``spec`` with each group reduced to its ``key`` entry."""
    spec = spec.clone()
    for group in GROUPS:
        for other in list(spec[group].keys()):
            if other != key:
                del spec[group][other]
    return spec
