"""Suite-wide fixtures: tests never write outside their temporary folders."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_model_cache(tmp_path_factory):
    """Point the pre-trained teacher cache at a per-session temporary folder, not ~/.cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("COMMCHANNELS_CACHE_DIR", str(tmp_path_factory.mktemp("model_cache")))
    yield
    mp.undo()


@pytest.fixture
def one_torch_thread():
    """Tiny tensors: one thread avoids thread-pool contention on a busy 2-core machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def cache(tmp_path_factory):
    """A folder for the pre-trained teacher model cache, shared by the session's tests."""
    return str(tmp_path_factory.mktemp("teacher_cache"))
