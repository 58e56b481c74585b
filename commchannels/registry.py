"""The one registry of environments: ids, entry points, default and debug kwargs.

``commchannels.make(id, **kwargs)`` builds any of them, and the test suite
(``tests/envs/test_registry_generic.py``) is parametrised over ``REGISTRY``, so a newly
registered environment is enrolled in every generic test (PettingZoo checkers, full-rollout
determinism, pickling, rendering, bad arguments, Gymnasium/SB3 checks of its roles) with no
test written by hand.

The same :func:`register` call also enrols the environment in the other libraries'
registries, so there is one list and no second place to keep in sync:

- PettingZoo (>= 1.27 has a registry): ``pettingzoo.make("aec", "commchannels/referential_v0")``
  and ``pettingzoo.make("parallel", ...)``; older PettingZoo versions have none, and the step
  is skipped.
- Gymnasium: every agent named in ``EnvSpec.roles`` as a single-agent env, its partners
  playing at random by default (see :mod:`commchannels.wrappers.role`):
  ``gymnasium.make("commchannels/Referential-sender-v0")``; for referential games also as a
  batched vector env (:mod:`commchannels.envs.referential.vector`), the default of
  ``gymnasium.make_vec("commchannels/Referential-sender-v0", num_envs=1024)``.

Environments defined outside the package (``examples/colour_game.py``) register themselves
when imported; :func:`load_env_module` imports such a file by path.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import gymnasium
import pettingzoo

NAMESPACE = "commchannels"


@dataclass(frozen=True)
class EnvSpec:
    """One registered environment.

    Attributes:
        id: e.g. ``"referential_v0"`` (``name_vN``; bump N when rules, rewards or spaces change).
        module: module with ``env()``, ``parallel_env()`` and ``raw_env`` (PettingZoo layout).
        kwargs: defaults passed to every constructor call.
        debug_kwargs: a small, fast configuration for tests and smoke runs.
        description: one line for ``commchannels envs``.
        roles: agents also exposed as single-agent Gymnasium envs (:func:`gym_id` names them).
        bad_kwargs: invalid arguments, ``{name: value}``; the generic tests check that each
            one alone raises ``ValueError`` or ``TypeError`` naming ``name``.
        game: ``"module:Class"`` of the referential game a referential environment plays (its
            constructor's keyword arguments are the options ``commchannels train referential
            --env-id ID`` trains with); ``None`` for other families.
    """

    id: str
    module: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    debug_kwargs: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    roles: tuple[str, ...] = ()
    bad_kwargs: dict[str, Any] = field(default_factory=dict)
    game: str | None = None

    def game_class(self) -> type:
        """The referential game class named by ``game``."""
        if self.game is None:
            referential = sorted(s.id for s in REGISTRY.values() if s.game is not None)
            raise ValueError(f"env_id={self.id!r} is not a referential game; expected one of {referential}")
        module, _, name = self.game.partition(":")
        return getattr(importlib.import_module(module), name)

    def load(self, kind: str = "env") -> Callable[..., Any]:
        """The constructor ``kind`` (``env``, ``parallel_env`` or ``raw_env``) of the module."""
        return getattr(importlib.import_module(self.module), kind)


REGISTRY: dict[str, EnvSpec] = {}


def gym_id(env_id: str, role: str) -> str:
    """The Gymnasium id of one role: ``gym_id("referential_digits_v0", "sender")`` is
    ``"commchannels/ReferentialDigits-sender-v0"``."""
    name, _, version = env_id.rpartition("_v")
    if not name or not version.isdigit():
        raise ValueError(f"environment id {env_id!r} is not of the form name_vN (e.g. 'referential_v0')")
    camel = "".join(part.capitalize() for part in name.split("_"))
    return f"{NAMESPACE}/{camel}-{role}-v{version}"


def _register_elsewhere(spec: EnvSpec) -> None:
    """Enrol ``spec`` in PettingZoo's and Gymnasium's registries."""
    if hasattr(pettingzoo, "register"):  # PettingZoo < 1.27 has no registry
        for kind, entry in (("aec", "env"), ("parallel", "parallel_env")):
            pettingzoo.register(kind, f"{NAMESPACE}/{spec.id}", entry_point=f"{spec.module}:{entry}",
                                kwargs=dict(spec.kwargs))
    # referential roles also get the batched vector env (the default of gymnasium.make_vec)
    vector = "commchannels.envs.referential.vector:make_role_vector_env" if spec.game is not None else None
    for role in spec.roles:
        gymnasium.register(id=gym_id(spec.id, role), entry_point="commchannels.wrappers.role:make_role_env",
                           vector_entry_point=vector, kwargs={"env_id": spec.id, "role": role})


def register(spec: EnvSpec) -> EnvSpec:
    """Add ``spec`` to the registry, and to PettingZoo's and Gymnasium's (an id can be
    registered once; registering the same spec again is a no-op)."""
    if spec.id in REGISTRY:
        if REGISTRY[spec.id] != spec:
            raise ValueError(f"environment id {spec.id!r} is already registered")
        return spec
    if spec.roles:
        gym_id(spec.id, spec.roles[0])  # fail early on an id Gymnasium cannot parse
    REGISTRY[spec.id] = spec
    _register_elsewhere(spec)
    return spec


def load_env_module(path: str | Path) -> ModuleType:
    """Import the Python file ``path`` as module ``<stem>`` so that its ``register`` calls run
    (for games defined outside the package, e.g. ``examples/colour_game.py``)."""
    path = Path(path)
    name = path.stem
    if name in sys.modules:
        loaded = getattr(sys.modules[name], "__file__", None)
        if loaded is None or Path(loaded).resolve() != path.resolve():
            raise ValueError(f"cannot import {str(path)!r} as module {name!r}: a module of that name is already "
                             f"imported from {loaded!r}; expected a file whose name is not taken (rename it)")
        return sys.modules[name]
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise ValueError(f"path={str(path)!r} is not an importable Python file")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module  # before executing, so pickle and spec.load find it by name
    try:
        module_spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def make(env_id: str, parallel: bool = False, debug: bool = False, **kwargs: Any) -> Any:
    """Build a registered environment: the AEC env, or the Parallel env with ``parallel=True``.

    Args:
        env_id: a registered id (``commchannels envs`` lists them).
        parallel: return the PettingZoo Parallel view instead of the AEC view.
        debug: start from the spec's small ``debug_kwargs``.
        **kwargs: override the spec's keyword arguments.
    """
    if env_id not in REGISTRY:
        raise ValueError(f"unknown environment id {env_id!r}; expected one of {sorted(REGISTRY)}")
    spec = REGISTRY[env_id]
    merged = {**spec.kwargs, **(spec.debug_kwargs if debug else {}), **kwargs}
    return spec.load("parallel_env" if parallel else "env")(**merged)


def game_settings_for(env_id: str, env_modules: tuple[str, ...] = ()) -> type:
    """The options dataclass of the referential game that ``env_id`` plays, after importing the
    files ``env_modules`` (which may register it)."""
    for path in env_modules:
        load_env_module(path)
    if env_id not in REGISTRY:
        raise ValueError(f"env_id={env_id!r} is not registered; expected one of {sorted(REGISTRY)} (a game "
                         "defined in a file of your own is registered by naming the file with --env-modules)")
    from commchannels.envs.referential.settings import game_settings

    spec = REGISTRY[env_id]
    return game_settings(spec.game_class(), tuple(sorted(spec.kwargs.items())))


def registry_table() -> str:
    """A text table of the registered environments."""
    rows = [f"{'id':<28} description"] + [f"{s.id:<28} {s.description}" for s in REGISTRY.values()]
    return "\n".join(rows)


register(EnvSpec(
    id="referential_v0",
    module="commchannels.envs.referential_v0",
    kwargs={},
    debug_kwargs={"n_attributes": 2, "n_values": 4, "n_candidates": 3, "vocab_size": 5, "max_len": 2},
    description="referential game over attribute-value objects (discrimination or reconstruction)",
    roles=("sender", "receiver"),
    game="commchannels.envs.referential.games:AttributeValueGame",
    bad_kwargs={"n_candidates": 1, "vocab_size": 1, "max_len": 0, "mode": "guess", "length_cost": -1.0,
                "holdout_fraction": 0.9, "split": "validation", "render_mode": "video", "objects": "shapes"},
))
register(EnvSpec(
    id="referential_hard_v0",
    module="commchannels.envs.referential_hard_v0",
    kwargs={},
    debug_kwargs={"n_attributes": 3, "n_values": 4, "vocab_size": 5, "max_len": 3, "holdout_fraction": 0.2},
    description="hard tier: 6x10 attributes reconstructed through 6 symbols of 12 (the language must compose)",
    roles=("sender", "receiver"),
    game="commchannels.envs.referential_hard_v0:HardAttributeValueGame",
    bad_kwargs={"n_attributes": 0, "n_values": 1, "vocab_size": 1, "max_len": 0, "mode": "guess"},
))
register(EnvSpec(
    id="referential_digits_v0",
    module="commchannels.envs.referential_digits_v0",
    kwargs={},
    debug_kwargs={"n_candidates": 3, "vocab_size": 5, "max_len": 2},
    description="referential game over scikit-learn's 8x8 digit images",
    roles=("sender", "receiver"),
    game="commchannels.envs.referential.games:DigitsGame",
    bad_kwargs={"n_candidates": 11, "vocab_size": 0, "max_len": -1, "mode": "draw", "render_mode": "human"},
))
register(EnvSpec(
    id="teaching_v0",
    module="commchannels.envs.teaching_v0",
    kwargs={},
    debug_kwargs={"hidden": (8,), "horizon": 4, "updates_per_step": 2, "batch_size": 8, "max_val": 60,
                  "n_probe": 3, "teacher_hidden": (16,), "teacher_epochs": 2, "target_accuracy": 0.5},
    description="a teacher directs the SGD training of a student classifier (digits, mnist1d, MNIST)",
    roles=("teacher",),
    bad_kwargs={"dataset": "cifar", "reward": "speed", "horizon": 0, "lr_scales": (), "target_accuracy": 1.5,
                "render_mode": "human"},
))
# The teacher's own Gymnasium view (passive student), a string entry point: nothing heavy is imported.
if "commchannels/Teaching-v0" not in gymnasium.registry:
    gymnasium.register(id="commchannels/Teaching-v0",
                       entry_point="commchannels.envs.teaching.gym_env:TeachingGymEnv")
