"""Data: classification sets (digits, mnist1d, MNIST IDX) and synthetic attribute-value objects."""

from commchannels.data.datasets import DATASETS, Dataset, load_dataset, load_digits, load_mnist, load_mnist1d
from commchannels.data.idx import read_idx, write_idx

__all__ = ["DATASETS", "Dataset", "load_dataset", "load_digits", "load_mnist", "load_mnist1d",
           "read_idx", "write_idx"]
