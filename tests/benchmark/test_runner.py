"""Result files, resuming, the reference set and the command line of the benchmark."""

from __future__ import annotations

import dataclasses
import json

import pytest

from commchannels.benchmark import runner
from commchannels.benchmark.protocol import method_label
from commchannels.benchmark.tasks import DEFAULT_SEEDS, TASK_LIST, get_task
from commchannels.cli import main


@pytest.fixture
def registered_tiny(tiny_task, monkeypatch):
    """tiny_task findable by name (the command line selects tasks by name)."""
    monkeypatch.setattr("commchannels.benchmark.tasks.TASK_LIST", (*TASK_LIST, tiny_task))
    return tiny_task


def test_run_units_writes_rows_and_resumes(registered_tiny, tmp_path, monkeypatch):
    out = tmp_path / "results.json"
    units = runner.plan(["random"], [registered_tiny], [0, 1, 1])  # a repeated seed runs once
    assert [(u[1], u[2]) for u in units] == [("random", 0), ("random", 1)]
    rows = runner.run_units(units, out, show_progress=False)
    payload = json.loads(out.read_text())
    assert payload["format"] == runner.FORMAT and payload["rows"] == rows and len(rows) == 2
    calls = []
    monkeypatch.setattr(runner, "run_one", lambda *args, **kwargs: calls.append(args))
    assert runner.run_units(units, out, show_progress=False) == rows  # nothing left to run
    assert calls == []


def test_parallel_runs_write_the_same_rows(registered_tiny, tmp_path):
    """--jobs 2 (spawned processes) gives the rows of a sequential run."""
    units = runner.plan(["random", "gumbel"], [registered_tiny], [0])
    sequential = runner.run_units(units, tmp_path / "one.json", show_progress=False)
    parallel = runner.run_units(units, tmp_path / "two.json", jobs=2, show_progress=False)
    drop = ("train_seconds", "eval_seconds")
    assert [{k: v for k, v in r.items() if k not in drop} for r in parallel] == \
        [{k: v for k, v in r.items() if k not in drop} for r in sequential]


def test_rows_of_an_old_task_version_are_dropped(registered_tiny, tmp_path, capsys):
    out = tmp_path / "results.json"
    old = {"task": "referential-small@0", "method": "random", "seed": 0, "score": 0.0}
    runner.write_results(out, [old])
    rows = runner.run_units(runner.plan(["random"], [registered_tiny], [0]), out, show_progress=False)
    assert [r["task"] for r in rows] == [registered_tiny.key]
    assert "dropping the rows of ['referential-small@0']" in capsys.readouterr().out


def test_a_results_file_has_one_writer(registered_tiny, tmp_path):
    out = tmp_path / "results.json"
    with runner._locked(out), pytest.raises(ValueError, match="another benchmark run is writing"):
        runner.run_units(runner.plan(["random"], [registered_tiny], [0]), out, show_progress=False)


def test_non_finite_numbers_are_written_as_null(tmp_path):
    runner.write_results(tmp_path / "r.json", [{"x": float("nan"), "y": [float("inf"), 1.0]}])
    assert runner.read_results(tmp_path / "r.json")["rows"] == [{"x": None, "y": [None, 1.0]}]


def test_plan_refuses_an_unknown_method(tiny_task):
    with pytest.raises(ValueError, match="neither a built-in method"):
        runner.plan(["no-such-method"], [tiny_task], [0])
    assert runner.plan(["codistill"], [tiny_task], [0]) == []  # another track's method: nothing to run


def test_reference_units_cover_every_task_reference_method():
    units = runner.reference_units([get_task("referential-small")], [0, 1])
    assert {unit[1] for unit in units} == set(get_task("referential-small").reference_methods)
    assert len(units) == 2 * len(get_task("referential-small").reference_methods)


def test_references_add_up_their_time_and_keep_other_rows(registered_tiny, tmp_path, monkeypatch):
    task = dataclasses.replace(registered_tiny, reference_methods=("random",))
    monkeypatch.setattr("commchannels.benchmark.tasks.TASK_LIST", (*TASK_LIST, task))
    out = tmp_path / "references.json"
    runner.references([task], [0], out=out, jobs=1, show_progress=False)
    first = runner.read_results(out)
    assert [(r["method"], r["seed"]) for r in first["rows"]] == [("random", 0)]
    assert first["command"] == "commchannels benchmark references" and first["wall_seconds"] > 0
    runner.references([task], [0, 1], out=out, jobs=1, show_progress=False)  # only seed 1 runs
    second = runner.read_results(out)
    assert second["rows"][0] == first["rows"][0] and len(second["rows"]) == 2
    assert second["wall_seconds"] > first["wall_seconds"]


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


def test_stored_references_cover_every_task_method_and_seed():
    payload = runner.read_results(runner.REFERENCES)
    runs = {(row["task"], row["method"], row["seed"]) for row in payload["rows"]}
    expected = {(task.key, method, seed) for task, method, seed, _ in runner.reference_units(TASK_LIST, DEFAULT_SEEDS)}
    assert runs == expected and len(payload["rows"]) == len(expected)
    for row in payload["rows"]:
        task = get_task(row["task"])
        assert row["score"] == pytest.approx(task.score(row[task.primary]))
        assert row["budget_used"] is None or row["budget_used"] <= task.budget


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


def test_methods_in_files_are_labelled_by_file_name(registered_tiny, tmp_path):
    path = tmp_path / "deep" / "mine.py"
    path.parent.mkdir()
    path.write_text("from commchannels.benchmark.referential import random_policy as make\n")
    assert method_label(f"{path}:make") == "mine.py:make" and method_label("gumbel") == "gumbel"
    out = tmp_path / "mine.json"
    assert main(["benchmark", "run", "--method", f"{path}:make", "--method", "random", "--name", "baseline",
                 "--name", "chance", "--tasks", registered_tiny.name, "--seeds", "0", "--out", str(out),
                 "--no-progress"]) == 0
    rows = runner.read_results(out)["rows"]
    assert [(r["method"], r["entry"]) for r in rows] == [("baseline", f"{path}:make"), ("chance", "random")]
    with pytest.raises(ValueError, match="one each, uniquely"):
        runner.plan(["random", "gumbel"], [registered_tiny], [0], labels=["same", "same"])


def test_cli_errors_name_the_bad_value(capsys):
    assert main(["benchmark", "run", "--method", "random", "--tasks", "nope"]) == 2
    assert "unknown benchmark task 'nope'" in capsys.readouterr().err
    assert main(["benchmark", "run", "--method", "random", "--tasks", "referential-small", "--jobs", "0"]) == 2
    assert "--jobs 0" in capsys.readouterr().err
    assert main(["benchmark", "references", "--tasks", "referential-small", "--threads", "0"]) == 2
    assert "--threads 0 is not allowed" in capsys.readouterr().err
