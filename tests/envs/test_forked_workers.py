"""Gymnasium's generic vector envs over the role envs, including forked workers (issue #10:
``make_vec(..., vectorization_mode="async")`` hung on torch's OpenMP pool forked into workers)."""

import subprocess
import sys
import textwrap

import gymnasium
import numpy as np
import pytest

import commchannels  # noqa: F401  (registers the ids)

SCRIPT = textwrap.dedent("""
    import torch
    import gymnasium
    import commchannels

    torch.ones(4_000_000).sum()  # start torch's OpenMP pool in the parent, as real programs do
    env = gymnasium.make_vec("commchannels/Referential-receiver-v0", num_envs=2, vectorization_mode="async",
                             vector_kwargs={"context": "fork"})
    obs, _ = env.reset(seed=0)
    _, reward, terminated, _, _ = env.step(env.action_space.sample())
    env.close()
    print("done", obs["candidates"].shape, terminated.tolist())
""")


@pytest.mark.skipif(sys.platform != "linux", reason="the fork start method is Linux's default")
def test_async_vector_env_with_forked_workers_does_not_hang():
    # a subprocess with a timeout, so that a hang fails the test instead of the suite
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "done (2, 5, 32) [True, True]" in result.stdout, result.stdout


def test_sync_vector_env_steps_every_role():
    env = gymnasium.make_vec("commchannels/Referential-sender-v0", num_envs=3, vectorization_mode="sync",
                             debug=True, flatten=True)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (3, *env.single_observation_space.shape) and obs.dtype == np.float32
    for _ in range(4):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
    assert reward.shape == terminated.shape == (3,)
    env.close()
