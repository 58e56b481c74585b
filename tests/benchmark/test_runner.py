"""Result files, resuming, the reference set and the command line of the benchmark."""

from __future__ import annotations

import json

import pytest

from commchannels.benchmark import runner
from commchannels.benchmark.tasks import TASK_LIST, get_task
from commchannels.cli import main


@pytest.fixture
def registered_tiny(tiny_task, monkeypatch):
    """tiny_task findable by name (the command line selects tasks by name)."""
    monkeypatch.setattr("commchannels.benchmark.tasks.TASK_LIST", (*TASK_LIST, tiny_task))
    return tiny_task


def test_run_units_writes_rows_and_resumes(tiny_task, tmp_path, monkeypatch):
    out = tmp_path / "results.json"
    units = runner.plan(["random"], [tiny_task], [0, 1])
    assert [(u[1], u[2]) for u in units] == [("random", 0), ("random", 1)]
    rows = runner.run_units(units, out, show_progress=False)
    payload = json.loads(out.read_text())
    assert payload["format"] == runner.FORMAT and payload["rows"] == rows and len(rows) == 2
    calls = []
    monkeypatch.setattr(runner, "run_one", lambda *args, **kwargs: calls.append(args))
    assert runner.run_units(units, out, show_progress=False) == rows  # nothing left to run
    assert calls == []


def test_plan_refuses_an_unknown_method(tiny_task):
    with pytest.raises(ValueError, match="neither a built-in method"):
        runner.plan(["no-such-method"], [tiny_task], [0])
    assert runner.plan(["codistill"], [tiny_task], [0]) == []  # another track's method: nothing to run


def test_reference_units_cover_every_task_reference_method():
    units = runner.reference_units([get_task("referential-small")], [0, 1])
    assert {method for _, method, _ in units} == set(get_task("referential-small").reference_methods)
    assert len(units) == 2 * len(get_task("referential-small").reference_methods)


def test_bad_results_files_are_named(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json' is not JSON"):
        runner.read_results(bad)
    bad.write_text(json.dumps({"rows": []}))
    with pytest.raises(ValueError, match="not a commchannels benchmark results file"):
        runner.read_results(bad)
    with pytest.raises(ValueError, match="does not exist"):
        runner.read_results(tmp_path / "missing.json")


def test_stored_references_are_a_results_file_of_the_current_tasks():
    payload = runner.read_results(runner.REFERENCES)
    keys = {task.key for task in TASK_LIST}
    assert {row["task"] for row in payload["rows"]} <= keys
    for row in payload["rows"]:
        assert row["method"] in get_task(row["task"]).reference_methods
        assert 0.0 <= row["score"] <= 1.0


def test_cli_lists_tasks(capsys):
    assert main(["benchmark", "tasks"]) == 0
    out = capsys.readouterr().out
    assert all(task.key in out for task in TASK_LIST)


def test_cli_runs_a_method_and_compares(registered_tiny, tmp_path, capsys):
    out = tmp_path / "random.json"
    assert main(["benchmark", "run", "--method", "random", "--tasks", registered_tiny.name, "--seeds", "0", "1",
                 "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "random" in printed and registered_tiny.key in printed
    assert len(runner.read_results(out)["rows"]) == 2


def test_cli_errors_name_the_bad_value(capsys):
    assert main(["benchmark", "run", "--method", "random", "--tasks", "nope"]) == 2
    assert "unknown benchmark task 'nope'" in capsys.readouterr().err
    assert main(["benchmark", "run", "--method", "random", "--tasks", "referential-small", "--jobs", "0"]) == 2
    assert "--jobs 0" in capsys.readouterr().err
