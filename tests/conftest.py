"""Suite-wide fixtures: tests never write outside their temporary folders."""

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_model_cache(tmp_path_factory):
    """Point the pre-trained teacher cache at a per-session temporary folder, not ~/.cache."""
    mp = pytest.MonkeyPatch()
    mp.setenv("COMMCHANNELS_CACHE_DIR", str(tmp_path_factory.mktemp("model_cache")))
    yield
    mp.undo()
