"""The one registry of environments: ids, entry points, default and debug kwargs.

``commchannels.make(id, **kwargs)`` builds any of them; the test suite is parametrised over
``REGISTRY`` so a newly registered environment is enrolled in the generic tests.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class EnvSpec:
    """One registered environment.

    Attributes:
        id: e.g. ``"referential_v0"``.
        module: module with ``env()``, ``parallel_env()`` and ``raw_env`` (PettingZoo layout).
        kwargs: defaults passed to every constructor call.
        debug_kwargs: a small, fast configuration for tests and smoke runs.
        description: one line for ``commchannels envs``.
    """

    id: str
    module: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    debug_kwargs: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def load(self, kind: str = "env") -> Callable[..., Any]:
        """The constructor ``kind`` (``env``, ``parallel_env`` or ``raw_env``) of the module."""
        return getattr(importlib.import_module(self.module), kind)


REGISTRY: dict[str, EnvSpec] = {}


def register(spec: EnvSpec) -> EnvSpec:
    """Add ``spec`` to the registry (an id can be registered once)."""
    if spec.id in REGISTRY and REGISTRY[spec.id] != spec:
        raise ValueError(f"environment id {spec.id!r} is already registered")
    REGISTRY[spec.id] = spec
    return spec


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
))
register(EnvSpec(
    id="referential_digits_v0",
    module="commchannels.envs.referential_v0",
    kwargs={"objects": "digits"},
    debug_kwargs={"n_candidates": 3, "vocab_size": 5, "max_len": 2},
    description="referential game over scikit-learn's 8x8 digit images",
))
