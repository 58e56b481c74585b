"""Examples are tests: each script in ``examples/`` runs in its tiny-budget mode.

Adding an example is one line in ``EXAMPLES``: script, arguments, a string its output must
contain and, optionally, a module it needs (the test is skipped, saying so, without it).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import NamedTuple

import pytest

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"


class Example(NamedTuple):
    script: str
    args: tuple[str, ...] = ("--quick",)
    expect: str = ""
    requires: str | None = None
    timeout: float = 120.0
    slow: bool = False
    extra: str | None = None  # the pyproject extra that installs `requires`


EXAMPLES = [
    Example("colour_game.py", expect="train acc"),
    Example("sb3_referential.py", expect="final greedy accuracy"),
    Example("cleanrl_ppo_referential.py", expect="final greedy accuracy", requires="supersuit", extra="rl"),
    Example("train_teacher_sb3.py", expect="PPO teacher"),
    Example("codistillation.py", expect="fewer bytes than sync-sgd"),
    Example("benchmark_method.py", expect="referential-small@1"),
    Example("benchmarl_referential.py", expect="final greedy accuracy", requires="benchmarl", extra="benchmarl"),
    Example("rllib_referential.py", expect="final greedy accuracy", requires="ray", extra="rllib",
            timeout=300, slow=True),
]


@pytest.mark.parametrize(
    "example", [pytest.param(e, marks=[pytest.mark.slow] if e.slow else []) for e in EXAMPLES],
    ids=[e.script for e in EXAMPLES])
def test_example_runs(example: Example, tmp_path: Path, run_example):
    if example.requires and importlib.util.find_spec(example.requires) is None:
        pytest.skip(f"{example.script} needs the optional package {example.requires!r} "
                    f"(pip install -e '.[{example.extra or example.requires}]')")
    out = run_example(example.script, *example.args, cwd=tmp_path, timeout=example.timeout)
    assert example.expect in out, out[-2000:]


def test_every_example_is_smoke_tested():
    listed = {e.script for e in EXAMPLES}
    scripts = {p.name for p in EXAMPLES_DIR.glob("*.py")}
    assert scripts <= listed, f"add these examples to EXAMPLES: {sorted(scripts - listed)}"
