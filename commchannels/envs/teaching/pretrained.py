"""The pre-trained teacher model: an MLP trained once, deterministically, on the task's
training set and cached on disk with a checksum.

The cache file is a checkpoint ``{"state": state_dict, "checksum": sha256, "key": key}``; the
checksum covers the parameter bytes, so a truncated or edited file is detected (it either fails
to load or fails the checksum) and the model is retrained and the file rewritten, never trusted.
The cache key hashes the data and every training setting, so a changed data set never reuses a
stale model.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from commchannels.agents.classifiers import MLPClassifier
from commchannels.agents.students import BatchedMLP
from commchannels.data import Dataset
from commchannels.runs import load_checkpoint, save_checkpoint
from commchannels.seeding import torch_generator

CACHE_ENV_VAR = "COMMCHANNELS_CACHE_DIR"


def default_cache_dir() -> Path:
    """``$COMMCHANNELS_CACHE_DIR``, else ``~/.cache/commchannels``."""
    return Path(os.environ.get(CACHE_ENV_VAR) or Path.home() / ".cache" / "commchannels")


def state_checksum(state: dict[str, torch.Tensor]) -> str:
    """sha256 over the names, shapes and bytes of a state dict's tensors."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().contiguous().cpu()
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def cache_key(data: Dataset, hidden: Sequence[int], epochs: int, seed: int) -> str:
    """A short hash of the training data and settings (names the cache file)."""
    digest = hashlib.sha256(f"{data.name}|{tuple(hidden)}|{epochs}|{seed}|sgd-v2".encode())
    for tensor in (data.x_train, data.y_train):
        digest.update(tensor.contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def blank_model(data: Dataset, hidden: Sequence[int]) -> MLPClassifier:
    """An :class:`MLPClassifier` for ``data`` whose parameters are about to be overwritten, built
    without drawing from torch's global generator (``nn.Linear`` initialises from it): loading a
    cached teacher, rebuilding a corrupt one and training a new one leave the caller's random
    state alike, so a corrupt cache cannot change a seeded run."""
    with torch.random.fork_rng(devices=[]):
        return MLPClassifier(data.n_features, data.n_classes, hidden)


def train_teacher_model(
    data: Dataset, hidden: Sequence[int] = (64,), epochs: int = 30, seed: int = 0, batch_size: int = 32,
    lr: float = 0.1,
) -> MLPClassifier:
    """Train an :class:`MLPClassifier` by minibatch SGD; deterministic given ``seed``.

    Reuses the students' batched SGD (:class:`BatchedMLP` with one model): no autograd, no
    ``torch.optim`` (whose first use imports ``torch._dynamo``, seconds of start-up), and every
    draw comes from the function's own generator.
    """
    generator = torch_generator(seed)
    net = BatchedMLP(data.n_features, data.n_classes, hidden, 1)
    net.init_(generator)
    targets = F.one_hot(data.y_train, data.n_classes).float()
    rate = torch.tensor([lr])
    n = len(data.y_train)
    with torch.no_grad():
        for _ in range(epochs):
            order = torch.randperm(n, generator=generator)
            for start in range(0, n, batch_size):
                rows = order[start : start + batch_size]
                net.sgd_step(data.x_train[rows][None], targets[rows][None], rate)
    model = blank_model(data, hidden)
    model.load_state_dict(net.state(0))
    model.eval()
    return model


def pretrained_teacher(
    data: Dataset,
    hidden: Sequence[int] = (64,),
    epochs: int = 30,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
) -> MLPClassifier:
    """The teacher model for ``data``: loaded from the cache when valid, else trained and cached.

    Args:
        data: the task.
        hidden: hidden layer sizes of the teacher MLP.
        epochs: training epochs.
        seed: training seed.
        cache_dir: cache folder (default :func:`default_cache_dir`).
    """
    key = cache_key(data, hidden, epochs, seed)
    path = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = path / f"teacher-{data.name}-{key}.pt"
    model = blank_model(data, hidden) if path.exists() else None
    if model is not None:
        try:
            saved = load_checkpoint(path)
            state = saved["state"]
            if saved.get("key") != key or saved.get("checksum") != state_checksum(state):
                raise ValueError("checksum mismatch")
            model.load_state_dict(state)
            model.eval()
            return model
        except Exception as err:  # any unreadable or tampered file is rebuilt, never trusted
            warnings.warn(f"teacher cache {str(path)!r} is corrupt ({err}); retraining", stacklevel=2)
    model = train_teacher_model(data, hidden, epochs, seed)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    save_checkpoint(path, {"state": state, "checksum": state_checksum(state), "key": key})
    return model
