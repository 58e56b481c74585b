"""Suite-wide fixtures: tests never write outside their temporary folders."""

import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from commchannels.seeding import seed_everything

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"


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
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def cache(tmp_path_factory):
    """A folder for the pre-trained teacher model cache, shared by the session's tests."""
    return str(tmp_path_factory.mktemp("teacher_cache"))


@pytest.fixture
def scramble_global_rngs():
    """Yields a function reseeding ``random``, numpy and torch globally; restores them after."""
    states = random.getstate(), np.random.get_state(), torch.get_rng_state()
    yield seed_everything
    random.setstate(states[0])
    np.random.set_state(states[1])
    torch.set_rng_state(states[2])


@pytest.fixture(scope="session")
def run_example():
    """A function running ``examples/<script> args`` in a fresh interpreter (in ``cwd``) that
    asserts it succeeded and returns its stdout."""
    def run(script: str, *args: str, cwd: Path, timeout: float = 120.0) -> str:
        env = {**os.environ, "PYTHONHASHSEED": "0", "MPLBACKEND": "Agg"}
        result = subprocess.run([sys.executable, str(EXAMPLES_DIR / script), *args], cwd=cwd, env=env,
                                capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0, f"{script} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
        return result.stdout
    return run
