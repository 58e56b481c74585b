"""Seeding helpers: every component draws from its own generator, never from global state."""

from __future__ import annotations

import random

import numpy as np
import torch


def torch_generator(seed: int | None, device: str | torch.device = "cpu") -> torch.Generator:
    """A ``torch.Generator`` seeded with ``seed`` (a fresh random seed when ``None``)."""
    gen = torch.Generator(device=device)
    if seed is None:
        gen.seed()
    else:
        gen.manual_seed(int(seed))
    return gen


def seed_everything(seed: int) -> None:
    """Seed the global RNGs of ``random``, numpy and torch (training scripts only).

    Environments never rely on this; training loops call it once so that network
    initialisation and dropout are reproducible.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
