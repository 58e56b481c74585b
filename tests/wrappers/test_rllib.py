"""RLlib multi-agent PPO (one policy per role, through RLlib's PettingZoo wrapper) learns the
referential game above chance. Optional: needs ``pip install -e '.[rllib]'``."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="RLlib is an optional extra: pip install -e '.[rllib]'")

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "rllib_referential.py"


@pytest.mark.slow
def test_rllib_multi_agent_ppo_learns_above_chance(tmp_path):
    result = subprocess.run([sys.executable, str(SCRIPT), "--iterations", "40"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=1500)
    assert result.returncode == 0, result.stderr[-4000:]
    accuracy = float(re.search(r"final greedy accuracy ([0-9.]+)", result.stdout).group(1))
    assert accuracy > 0.45, result.stdout[-3000:]  # chance is 1/3 with 3 candidates
