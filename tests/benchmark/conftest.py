"""Small versions of the benchmark's tasks for fast tests."""

from __future__ import annotations

import dataclasses

import pytest

from commchannels.benchmark.tasks import Task, get_task


@pytest.fixture
def tiny_task() -> Task:
    """referential-small with a tiny budget and evaluation (a test-only version)."""
    return dataclasses.replace(get_task("referential-small"), name="referential-tiny", budget=128 * 40,
                               eval_games=256)
