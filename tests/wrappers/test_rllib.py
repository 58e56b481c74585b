"""RLlib multi-agent PPO (one policy per role, through RLlib's PettingZoo wrapper) learns the
referential game above chance. Optional: needs ``pip install -e '.[rllib]'``."""

import re

import pytest

pytest.importorskip("ray", reason="RLlib is an optional extra: pip install -e '.[rllib]'")



@pytest.mark.slow
def test_rllib_multi_agent_ppo_learns_above_chance(tmp_path, run_example):
    out = run_example("rllib_referential.py", "--iterations", "40", cwd=tmp_path, timeout=1500)
    accuracy = float(re.search(r"final greedy accuracy ([0-9.]+)", out).group(1))
    assert accuracy > 0.45, out[-3000:]  # chance is 1/3 with 3 candidates
