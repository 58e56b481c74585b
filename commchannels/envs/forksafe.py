"""Forked worker processes run torch single-threaded (issue #10).

torch's OpenMP thread pool, once started in a parent process, is not usable in a child made
by ``fork``: the child's first parallel region waits forever for threads that were not copied.
``gymnasium.make_vec(..., vectorization_mode="async")`` forks its workers on Linux after
building one environment in the parent, and so hung. Importing this module (every environment
module does) registers an ``os.register_at_fork`` hook that sets ``torch.set_num_threads(1)`` in
each forked child, as PyTorch's own ``DataLoader`` does for its workers; a worker that wants
more threads can call ``torch.set_num_threads`` itself. Spawned and forkserver children start
fresh interpreters and are unaffected.
"""

from __future__ import annotations

import os

import torch

_registered = False


def _single_threaded_child() -> None:
    torch.set_num_threads(1)


def register() -> None:
    """Register the hook once per process (idempotent)."""
    global _registered
    if not _registered and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_single_threaded_child)
        _registered = True


register()
