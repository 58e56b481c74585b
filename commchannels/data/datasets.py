"""Classification data sets as tensors: digits (ships with scikit-learn), mnist1d (generated
procedurally), MNIST (IDX files the user points to). Nothing is downloaded."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from commchannels.data.idx import find_mnist_file, read_idx

DATASETS = ("digits", "mnist1d", "mnist")


@dataclass(frozen=True)
class Dataset:
    """A train/test classification split. Inputs are float32, flattened to ``(N, n_features)``;
    ``input_shape`` gives the natural shape (e.g. ``(1, 8, 8)``) for convolutional models."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int
    input_shape: tuple[int, ...]

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])


def _split(x: np.ndarray, y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, ...]:
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = int(round(len(y) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


def _as_dataset(name: str, parts: tuple[np.ndarray, ...], n_classes: int, shape: tuple[int, ...]) -> Dataset:
    xtr, ytr, xte, yte = parts
    return Dataset(
        name=name,
        x_train=torch.as_tensor(xtr, dtype=torch.float32).reshape(len(ytr), -1),
        y_train=torch.as_tensor(ytr, dtype=torch.long),
        x_test=torch.as_tensor(xte, dtype=torch.float32).reshape(len(yte), -1),
        y_test=torch.as_tensor(yte, dtype=torch.long),
        n_classes=n_classes,
        input_shape=shape,
    )


@lru_cache(maxsize=4)
def load_digits(test_fraction: float = 0.25, split_seed: int = 0) -> Dataset:
    """scikit-learn's 8x8 digits (1797 images, 10 classes), pixels scaled to [0, 1]."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    return _as_dataset("digits", _split(x, bunch.target, test_fraction, split_seed), 10, (1, 8, 8))


@lru_cache(maxsize=4)
def load_mnist1d(num_samples: int = 5000, seed: int = 42) -> Dataset:
    """MNIST-1D (Greydanus 2020), generated procedurally by the ``mnist1d`` package.

    The generator seeds numpy's and ``random``'s global state; both are restored afterwards.
    """
    import random

    from mnist1d.data import get_dataset_args, make_dataset

    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        args = get_dataset_args()
        args.num_samples, args.seed = num_samples, seed
        data = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    parts = (data["x"], data["y"], data["x_test"], data["y_test"])
    return _as_dataset("mnist1d", parts, 10, (1, data["x"].shape[1]))


def load_mnist(root: str | os.PathLike) -> Dataset:
    """MNIST from the four IDX files in ``root`` (as distributed by LeCun et al.)."""
    arrays = {key: read_idx(find_mnist_file(root, key)) for key in
              ("train_images", "train_labels", "test_images", "test_labels")}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"MNIST {split} files disagree: images {images.shape}, labels {labels.shape}")
    h, w = arrays["train_images"].shape[1:]
    n_classes = int(max(arrays["train_labels"].max(), arrays["test_labels"].max())) + 1
    parts = (arrays["train_images"] / 255.0, arrays["train_labels"].astype(np.int64),
             arrays["test_images"] / 255.0, arrays["test_labels"].astype(np.int64))
    return _as_dataset("mnist", parts, max(n_classes, 10), (1, h, w))


def load_dataset(name: str, path: str | os.PathLike | None = None) -> Dataset:
    """Load a data set by name: ``digits``, ``mnist1d`` or ``mnist`` (needs ``path``)."""
    if name == "digits":
        return load_digits()
    if name == "mnist1d":
        return load_mnist1d()
    if name == "mnist":
        if path is None:
            raise ValueError("dataset='mnist' needs data_path pointing to a folder of MNIST IDX files")
        return load_mnist(path)
    raise ValueError(f"dataset={name!r} is not known; expected one of {list(DATASETS)}")
