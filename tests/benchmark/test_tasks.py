"""The benchmark task list: names, versions, selection and scores."""

from __future__ import annotations

import dataclasses

import pytest

from commchannels.benchmark.protocol import BUILTIN
from commchannels.benchmark.tasks import TASK_LIST, TRACKS, get_task, select_tasks


def test_tasks_are_unique_and_complete():
    names = [task.name for task in TASK_LIST]
    assert len(names) == len(set(names))
    assert {task.track for task in TASK_LIST} == set(TRACKS)
    for task in TASK_LIST:
        assert task.budget > 0 and task.primary in task.metrics and task.reference_methods
        for method in task.reference_methods:  # every reference method exists for the task's track
            assert task.track in BUILTIN[method], (task.name, method)


def test_referential_tiers_cover_the_issue():
    names = {task.name for task in TASK_LIST}
    assert {"referential-small", "referential-standard", "referential-hard", "referential-digits",
            "referential-colours"} <= names
    hard = get_task("referential-hard")
    assert hard.env["vocab_size"] - 1 < hard.env["n_values"]  # fewer symbols than values: names must compose
    standard = get_task("referential-standard")
    assert hard.env["n_candidates"] > standard.env["n_candidates"]
    assert hard.env["n_attributes"] > standard.env["n_attributes"] and hard.env["n_values"] > standard.env["n_values"]
    assert (hard.env["vocab_size"] - 1) ** hard.env["max_len"] >= hard.env["n_values"] ** hard.env["n_attributes"]


def test_get_task_checks_name_and_version():
    assert get_task("referential-small@1") is get_task("referential-small")
    with pytest.raises(ValueError, match="unknown benchmark task 'nope'"):
        get_task("nope")
    with pytest.raises(ValueError, match="asks for version 99"):
        get_task("referential-small@99")


def test_select_tasks_by_name_and_track():
    assert select_tasks(None) == list(TASK_LIST)
    referential = select_tasks(["referential"])
    assert referential and all(task.track == "referential" for task in referential)
    assert select_tasks(["referential-small", "referential-small"]) == [get_task("referential-small")]


def test_score_maps_chance_to_zero_and_best_to_one():
    task = get_task("referential-small")
    assert task.score(task.chance) == 0.0 and task.score(1.0) == 1.0 and task.score(0.0) == 0.0
    teaching = dataclasses.replace(get_task("teaching-mlp-arch"), chance=400.0, best=0.0)
    assert not teaching.higher_is_better
    assert teaching.score(100.0) == pytest.approx(0.75) and teaching.score(500.0) == 0.0
