"""The benchmark's task list: every task fixes its environment, budget, evaluation and metrics.

A task is a frozen record; its ``version`` is bumped whenever anything that changes a score
changes (the env's arguments, the budget, the evaluation), so results and reference scores are
only ever compared at the same ``name@version``. :data:`TASKS_VERSION` names the list as a whole
(bumped when a task is added, removed or re-versioned).

Three tracks, one per level of communication:

* ``referential``: a sender and a receiver play a referential game (``env_id`` with ``env``
  as its arguments). Budget in games (sender-receiver episodes) played while learning.
  Evaluation: greedy play of ``eval_games`` fresh games per split (train objects, held-out
  objects), the same games for every method (generator seeded by :data:`EVAL_SEED`), plus the
  same games with the channel cut (each receiver reads the message sent about another game's
  target) and the language metrics topsim and posdis.
* ``teaching``: a teacher directs the SGD training of students (``env`` are
  :class:`~commchannels.envs.teaching.TeachingSettings`). Budget in training student runs
  (episodes). Evaluation: ``eval_games`` students per seed on the preset's held-out families;
  SGD updates to the target accuracy and area under the learning curve.
* ``exchange``: workers on shards of a data set train one classifier each and may communicate
  (``env`` are :class:`~commchannels.training.exchange.Config` options). Budget in SGD steps per
  worker. Evaluation: test accuracy of every worker's model, and the bytes communicated.

Every task's ``score`` (what the aggregate report and performance profiles use) maps its
primary metric to [0, 1]: 0 for chance (or no improvement over the horizon), 1 for perfect.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TASKS_VERSION = "1"
TRACKS = ("referential", "teaching", "exchange")
EVAL_SEED = 12345  # the referential track's evaluation games: never a training seed of the built-in methods
DEFAULT_SEEDS = (0, 1, 2, 3, 4)


@dataclass(frozen=True)
class Task:
    """One benchmark task.

    Attributes:
        name: the task's name on the command line (``referential-small``).
        version: bumped whenever a score could change; results carry ``name@version``.
        track: ``referential``, ``teaching`` or ``exchange`` (which evaluation applies).
        description: one line for ``commchannels benchmark tasks``.
        env_id: the registered environment (referential and teaching tracks).
        env: the environment's (or exchange setting's) arguments.
        budget: how much a method may train, in ``budget_unit``.
        budget_unit: ``games``, ``student runs`` or ``steps``.
        eval_games: evaluation games per split (referential) or students per seed (teaching);
            test examples are the whole test split (exchange).
        eval_seeds: evaluation seeds (teaching: seeds of ``eval_games`` held-out students each).
        primary: the metric the score is made from.
        chance: the primary metric's value that scores 0 (random play, or no progress).
        best: the primary metric's value that scores 1.
        metrics: metrics reported for the task (the result rows hold these and more).
        env_modules: Python files registering the task's game (paths relative to the
            repository root: a game that lives in ``examples/``).
        reference_methods: the built-in methods whose scores are stored as references for the
            task (the RL libraries only on the tiers where they run in minutes).
    """

    name: str
    version: int
    track: str
    description: str
    env_id: str = ""
    env: dict[str, Any] = field(default_factory=dict)
    budget: int = 0
    budget_unit: str = "games"
    eval_games: int = 1024
    eval_seeds: int = 1
    primary: str = "test_acc"
    chance: float = 0.0
    best: float = 1.0
    metrics: tuple[str, ...] = ()
    env_modules: tuple[str, ...] = ()
    reference_methods: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """``name@version``: results are comparable only at the same key."""
        return f"{self.name}@{self.version}"

    @property
    def higher_is_better(self) -> bool:
        return self.best > self.chance

    def score(self, value: float) -> float:
        """The primary metric mapped to [0, 1] (0: chance, 1: best; clipped)."""
        return min(1.0, max(0.0, (value - self.chance) / (self.best - self.chance)))


_REFERENTIAL_METRICS = ("train_acc", "test_acc", "cut_acc", "channel_gain", "topsim", "posdis")


_REFERENTIAL_METHODS = ("random", "reinforce", "gumbel", "continuous")


def _updates_cap(env: dict[str, Any]) -> float:
    """SGD updates in a whole teaching episode (where ``updates_to_target`` is censored)."""
    from commchannels.envs.teaching import TeachingSettings

    settings = TeachingSettings(**env)
    return float(settings.horizon * settings.updates_per_step)


def _referential(name: str, description: str, env_id: str, env: dict[str, Any], updates: int,
                 primary: str = "test_acc", env_modules: tuple[str, ...] = (), version: int = 1,
                 libraries: tuple[str, ...] = ()) -> Task:
    # budgets are whole updates of the built-in trainers' 128 games; the game's arguments are
    # spelled out (not left to the game's defaults), so chance is known without building it
    if "n_candidates" not in env:
        raise ValueError(f"task {name!r}: env must set n_candidates (chance depends on it)")
    chance = 1.0 / env["n_candidates"] if env.get("mode", "discrimination") == "discrimination" else 0.0
    return Task(name=name, version=version, track="referential", description=description, env_id=env_id, env=env,
                budget=updates * 128, budget_unit="games", eval_games=2048, primary=primary, chance=chance,
                metrics=_REFERENTIAL_METRICS, env_modules=env_modules,
                reference_methods=_REFERENTIAL_METHODS + libraries)


TASK_LIST: tuple[Task, ...] = (
    _referential("referential-small", "2x4 attribute objects, 3 candidates, 8 symbols x 2 (12 train / 4 held-out)",
                 "referential_v0", {"n_attributes": 2, "n_values": 4, "holdout_fraction": 0.25, "n_candidates": 3,
                                    "vocab_size": 8, "max_len": 2}, updates=300,
                 libraries=("sb3-ppo", "benchmarl-mappo")),
    _referential("referential-standard", "4x8 attribute objects, 5 candidates, 16 symbols x 4 (10% held out)",
                 "referential_v0", {"n_attributes": 4, "n_values": 8, "n_candidates": 5, "vocab_size": 16,
                                    "max_len": 4}, updates=600, libraries=("sb3-ppo",)),
    _referential("referential-hard", "5x10 objects, 10 candidates, 7 symbols (fewer than the 10 values) x 7: "
                 "names must be composed", "referential_hard_v0",
                 {"n_attributes": 5, "n_values": 10, "mode": "discrimination", "n_candidates": 10, "vocab_size": 8,
                  "max_len": 7}, updates=600),
    _referential("referential-digits", "scikit-learn 8x8 digit images, 5 candidates of other classes, 10 symbols x 2 "
                 "(held-out images)", "referential_digits_v0", {"n_candidates": 5, "vocab_size": 10, "max_len": 2},
                 updates=400),
    _referential("referential-colours", "colour naming: 6 hues x 3 lightness cells, 4 candidates, 8 symbols x 2 "
                 "(unseen shades held out; examples/colour_game.py)", "colours_v0",
                 {"n_candidates": 4, "vocab_size": 8, "max_len": 2}, updates=300,
                 env_modules=("examples/colour_game.py",)),
    # SGD updates until the student's validation accuracy reaches the target, censored at the
    # horizon (directives x updates per directive): the cap scores 0, 0 would score 1
    Task(name="teaching-mlp-arch", version=1, track="teaching",
         description="teach varied MLP students (optimiser, activation, depth) on digits; scored on held-out "
                     "families (depth 3, ELU, RMSprop)", env_id="teaching_v0", env={"students": "mlp-arch"},
         budget=1024, budget_unit="student runs", eval_games=8, eval_seeds=4, primary="updates_to_target",
         chance=_updates_cap({"students": "mlp-arch"}), best=0.0,
         metrics=("updates_to_target", "reached", "auc", "final_accuracy"),
         reference_methods=("random", "plain-sgd", "tuned-lr", "tuned-lr-per-family", "tuned-cosine", "blind-teacher",
                            "sighted-teacher")),
    # accuracy against bytes: 4 workers on shards of MNIST-1D
    Task(name="exchange-mnist1d", version=1, track="exchange",
         description="4 workers on shards of MNIST-1D (MLP), 1000 steps each: test accuracy and bytes sent",
         env={"dataset": "mnist1d", "workers": 4, "model": "mlp", "batch_size": 32}, budget=1000,
         budget_unit="steps", primary="test_acc", chance=0.1, best=1.0,
         metrics=("test_acc", "test_acc_min", "bytes_sent"),
         reference_methods=("independent", "sync-ddp", "powersgd", "diloco", "codistill")),
)


def get_task(name: str) -> Task:
    """The task called ``name`` (``name@version`` checks the version too)."""
    base, _, version = name.partition("@")
    found = {task.name: task for task in TASK_LIST}.get(base)
    if found is None:
        raise ValueError(f"unknown benchmark task {name!r}; expected one of {[t.name for t in TASK_LIST]} "
                         "(commchannels benchmark tasks lists them)")
    if version and version != str(found.version):
        raise ValueError(f"task {name!r} asks for version {version}, but this commchannels has "
                         f"{found.key}; results of other versions are not comparable")
    return found


def select_tasks(names: list[str] | None) -> list[Task]:
    """The tasks named (all of them for ``None``; a track name selects its tasks)."""
    if not names:
        return list(TASK_LIST)
    chosen: list[Task] = []
    for name in names:
        picked = [t for t in TASK_LIST if t.track == name] if name in TRACKS else [get_task(name)]
        chosen += [t for t in picked if t not in chosen]
    return chosen
