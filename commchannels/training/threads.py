"""The ``threads`` option every trainer shares: torch's CPU threads during training."""

from __future__ import annotations

import os

import torch

THREADS_HELP = ("torch CPU threads during training (1 is fastest for these small networks, above all on a "
                "shared machine; 0: leave torch's setting; at most the machine's CPU count)")


def check_threads(threads: int) -> None:
    """Raise ``ValueError`` unless ``0 <= threads <= os.cpu_count()`` (a huge thread count made
    OpenMP abort the process)."""
    cpus = os.cpu_count() or 1
    if not 0 <= threads <= cpus:
        raise ValueError(f"threads={threads} is out of range; expected 0 (torch's setting) to {cpus}, this "
                         "machine's CPU count")


def torch_threads(threads: int) -> int:
    """Set torch's thread count to ``threads`` (0: leave it); returns the previous count to restore."""
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    return previous
