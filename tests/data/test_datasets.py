"""Data loading: IDX reader/writer, MNIST folders, digits and mnist1d."""

import gzip
import random

import numpy as np
import pytest
import torch

from commchannels.data import load_dataset, load_digits, load_mnist, load_mnist1d, read_idx, write_idx


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.float32])
def test_idx_round_trip(tmp_path, suffix, dtype):
    array = (np.arange(2 * 3 * 4) % 7).astype(dtype).reshape(2, 3, 4)
    path = tmp_path / f"a.idx{suffix}"
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == dtype and np.array_equal(back, array)


def test_idx_header_is_big_endian(tmp_path):
    path = tmp_path / "labels"
    write_idx(path, np.array([1, 2, 3], np.uint8))
    raw = path.read_bytes()
    assert raw[:4] == bytes([0, 0, 0x08, 1]) and raw[4:8] == (3).to_bytes(4, "big") and raw[8:] == b"\x01\x02\x03"


def test_idx_errors_name_the_problem(tmp_path):
    bad = tmp_path / "bad"
    bad.write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="bad magic number"):
        read_idx(bad)
    truncated = tmp_path / "truncated"
    truncated.write_bytes(bytes([0, 0, 0x08, 1]) + (10).to_bytes(4, "big") + b"\x00" * 3)
    with pytest.raises(ValueError, match="3 data bytes for shape \\(10,\\), expected 10"):
        read_idx(truncated)


def _write_mnist(root, n_train=20, n_test=10, gz=False):
    rng = np.random.default_rng(0)
    names = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) % 10).astype(np.uint8),
    }
    for name, array in names.items():
        write_idx(root / (name + (".gz" if gz else "")), array)
    return names


@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist_from_small_idx_files(tmp_path, gz):
    names = _write_mnist(tmp_path, gz=gz)
    data = load_mnist(tmp_path)
    assert data.x_train.shape == (20, 784) and data.x_test.shape == (10, 784)
    assert data.input_shape == (1, 28, 28) and data.n_classes == 10
    expected = torch.tensor(names["train-images-idx3-ubyte"][3].reshape(-1) / 255.0, dtype=torch.float32)
    assert torch.allclose(data.x_train[3], expected)
    assert data.y_test.tolist() == list(range(10))
    assert gzip  # the .gz branch is exercised by gz=True


def test_load_mnist_missing_file_and_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        load_mnist(tmp_path)
    with pytest.raises(ValueError, match="needs data_path"):
        load_dataset("mnist")
    expected = r"dataset='cifar' is not known; expected one of \['digits', 'mnist1d', 'mnist'\]"
    with pytest.raises(ValueError, match=expected):
        load_dataset("cifar")


def test_digits_split_is_fixed():
    data = load_digits()
    assert data.x_train.shape == (1348, 64) and data.x_test.shape == (449, 64)
    assert float(data.x_train.min()) >= 0.0 and float(data.x_train.max()) <= 1.0
    assert set(data.y_train.tolist()) == set(range(10))


def test_mnist1d_is_generated_and_leaves_global_rng_alone():
    state = np.random.get_state()[1].copy()
    py_state = random.getstate()
    data = load_mnist1d()
    assert data.x_train.shape == (4000, 40) and data.x_test.shape == (1000, 40)
    assert np.array_equal(np.random.get_state()[1], state) and random.getstate() == py_state
