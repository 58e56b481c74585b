"""The benchmark report on synthetic result rows: statistics by hand, determinism, files, errors.

(Not ``test_report.py``: ``tests/metrics/test_report.py`` exists and the test folders are not
packages, so two files of one name cannot be collected in one session.)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rliable import metrics

from commchannels.benchmark import report as rep
from commchannels.benchmark.runner import FORMAT
from commchannels.benchmark.tasks import get_task

TASKS = ("referential-small", "referential-standard")
REPS = 200  # the statistics do not depend on it; the default (2000) only narrows the bootstrap noise
# normalised scores, seed-major per task: method "a" scores 0.0 .. 0.9 over its 10 runs
SCORES = {"a": {"referential-small": [0.0, 0.1, 0.2, 0.3, 0.4], "referential-standard": [0.5, 0.6, 0.7, 0.8, 0.9]},
          "b": {"referential-small": [0.5, 0.5, 0.5, 0.5, 0.5], "referential-standard": [1.0, 1.0, 1.0, 1.0, 1.0]}}


def make_row(task_name: str, method: str, seed: int, score: float) -> dict:
    """A row as run_one writes it, with the primary metric that gives ``score``."""
    task = get_task(task_name)
    value = task.chance + score * (task.best - task.chance)
    return {"task": task.key, "track": task.track, "method": method, "seed": seed, "score": task.score(value),
            task.primary: value, "train_acc": 0.5 + seed / 10, "topsim": None, "train_seconds": 1.0}


def synthetic_rows() -> list[dict]:
    return [make_row(task, method, seed, score) for method, tasks in SCORES.items()
            for task, scores in tasks.items() for seed, score in enumerate(scores)]


def write_results(path: Path, rows: list[dict]) -> Path:
    path.write_text(json.dumps({"format": FORMAT, "tasks_version": "1", "machine": {"cpu": "test"}, "rows": rows}))
    return path


def by_label(entries: list[dict]) -> dict[str, dict]:
    return {e["label"]: e for e in entries}


# ---------------------------------------------------------------------------- statistics
def test_iqm_is_rliables_and_by_hand():
    assert rep.iqm(np.arange(10.0)) == pytest.approx(4.5)  # cut 2 at each end: mean of 2..7
    assert rep.iqm(np.arange(8.0)) == pytest.approx(3.5)  # cut 2 at each end: mean of 2..5
    rng = np.random.default_rng(0)
    for shape in [(5, 2), (7, 1), (3, 3), (10, 4)]:
        scores = rng.random(shape)
        assert rep.iqm(scores) == pytest.approx(metrics.aggregate_iqm(scores))


def test_aggregate_matches_hand_computation():
    entries = by_label(rep.aggregate(synthetic_rows(), reps=REPS))
    a, b = entries["a"], entries["b"]
    assert a["iqm"] == pytest.approx(0.45)  # 0.2 .. 0.7
    assert a["mean"] == pytest.approx(0.45)
    assert a["optimality_gap"] == pytest.approx(0.55)
    assert b["iqm"] == pytest.approx(0.75)  # three 0.5s and three 1.0s survive the cut
    assert b["optimality_gap"] == pytest.approx(0.25)
    assert (a["n_runs"], a["n_tasks"], a["tasks"]) == (5, 2, ["referential-small@1", "referential-standard@1"])
    assert [e["label"] for e in rep.aggregate(synthetic_rows(), reps=REPS)] == ["b", "a"]  # best IQM first


def test_per_task_matches_hand_computation():
    entries = [e for e in rep.per_task(synthetic_rows(), reps=REPS) if e["task"] == "referential-small@1"]
    a = by_label(entries)["a"]
    task = get_task("referential-small")
    values = [task.chance + s * (task.best - task.chance) for s in SCORES["a"]["referential-small"]]
    assert a["values"] == pytest.approx(values)
    assert a["iqm"] == pytest.approx(np.mean(values[1:4]))  # 5 seeds: one cut at each end
    assert a["means"]["test_acc"] == pytest.approx(np.mean(values))
    assert a["means"]["train_acc"] == pytest.approx(0.7)
    assert a["means"]["topsim"] is None  # no seed has a number
    assert [e["label"] for e in entries] == ["b", "a"]


def test_intervals_contain_the_estimate_and_are_deterministic():
    rows = synthetic_rows()
    state = np.random.get_state()
    first, again = rep.aggregate(rows, reps=REPS, seed=3), rep.aggregate(rows, reps=REPS, seed=3)
    assert first == again
    assert rep.per_task(rows, reps=REPS, seed=3) == rep.per_task(rows, reps=REPS, seed=3)
    assert np.random.get_state()[1].tolist() == state[1].tolist()  # numpy's global generator is restored
    assert rep.aggregate(rows, reps=REPS, seed=4) != first
    for e in first:
        for stat in rep.STATISTICS:
            assert e[f"{stat}_low"] <= e[stat] + 1e-12 <= e[f"{stat}_high"] + 2e-12
    assert by_label(first)["a"]["iqm_low"] < by_label(first)["a"]["iqm_high"]
    for e in rep.per_task(rows, reps=REPS):
        assert e["iqm_low"] <= e["iqm"] + 1e-12 <= e["iqm_high"] + 2e-12


def test_adding_a_method_does_not_move_the_others():
    rows = synthetic_rows()
    more = rows + [make_row("referential-small", "c", s, 0.3) for s in range(5)]
    before, after = by_label(rep.aggregate(rows, reps=REPS)), by_label(rep.aggregate(more, reps=REPS))
    # "c" has one of the references' two tasks: it is left out, the others keep both tasks
    assert "c" not in after and after["a"] == before["a"] and len(after["a"]["tasks"]) == 2


def test_a_users_tasks_decide_the_comparison():
    rows = synthetic_rows() + [{**make_row("referential-small", "c", s, 0.3), "source": "yours"} for s in range(5)]
    found = by_label(rep.aggregate(rows, reps=REPS))
    assert found["c (yours)"]["tasks"] == found["a"]["tasks"] == ["referential-small@1"]
    assert found["a"]["iqm"] == pytest.approx(np.mean([0.1, 0.2, 0.3]))
    only_a = [r for r in rows if r["method"] == "a" and r["task"] == "referential-small@1"]
    assert by_label(rep.aggregate(only_a, reps=REPS))["a"] == found["a"]


def test_a_users_method_stays_apart_from_the_reference_of_the_same_name(tmp_path):
    ours = write_results(tmp_path / "ours.json", synthetic_rows())
    refs = write_results(tmp_path / "refs.json", synthetic_rows())
    rows = rep.load_results([ours]) + rep.load_results([refs], source=rep.REFERENCE)
    labels = [e["label"] for e in rep.aggregate(rows, reps=REPS)]
    assert sorted(labels) == ["a", "a (yours)", "b", "b (yours)"]


# ---------------------------------------------------------------------------- the report
def test_report_writes_its_files(tmp_path):
    refs = write_results(tmp_path / "refs.json", synthetic_rows())
    mine = write_results(tmp_path / "mine.json", [make_row("referential-small", "mine", s, 0.9) for s in range(3)])
    out = tmp_path / "report"
    text = rep.report([mine], out, references=refs, reps=REPS)
    names = {"report.json", "report.csv", "performance_profiles.png", "aggregate.png",
             "task_referential-small_v1.png", "task_referential-standard_v1.png"}
    assert names == {p.name for p in out.iterdir()}
    assert "mine (yours)" in text and "test_acc IQM [95% CI]" in text and "referential: 1 task " in text
    data = json.loads((out / "report.json").read_text(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
    assert {e["label"] for e in data["aggregate"]} == {"a", "b", "mine (yours)"}
    assert data["reps"] == REPS and len(data["per_task"]) == 5
    csv_text = (out / "report.csv").read_text().splitlines()
    assert csv_text[0] == "table,track,task,method,source,n,statistic,value,low,high"
    assert any(line.startswith("task,referential,referential-small@1,mine,yours,3,iqm_test_acc,") for line in csv_text)
    assert all((out / n).stat().st_size > 1000 for n in names if n.endswith(".png"))


def test_report_without_references_and_the_missing_reference_file(tmp_path, monkeypatch):
    mine = write_results(tmp_path / "mine.json", synthetic_rows())
    assert "a (yours)" in rep.report([mine], tmp_path / "out", references=False, reps=REPS)
    monkeypatch.setattr(rep, "REFERENCES", tmp_path / "nowhere.json")
    with pytest.raises(ValueError, match="no reference file at .*nowhere.json"):
        rep.report([mine], tmp_path / "out", reps=REPS)


# ---------------------------------------------------------------------------- bad files
def _bad(tmp_path: Path, case: str) -> Path:
    path = tmp_path / f"{case}.json"
    good = make_row("referential-small", "a", 0, 0.5)

    def file(rows: list[dict]) -> str:
        return json.dumps({"format": FORMAT, "tasks_version": "1", "rows": rows})

    payload = {
        "not_json": "{rows: [",
        "a_list": json.dumps([good]),
        "no_rows": json.dumps({"format": FORMAT, "tasks_version": "1", "machine": {}}),
        "missing_key": file([{k: v for k, v in good.items() if k != "seed"}]),
        "unknown_task": file([{**good, "task": "referential-huge@1"}]),
        "old_version": file([{**good, "task": "referential-small@9"}]),
        "wrong_score": file([{**good, "score": 0.9}]),
        "no_primary": file([{**good, "test_acc": None}]),
        "float_seed": file([{**good, "seed": 0.5}]),
    }.get(case)
    if payload is not None:
        path.write_text(payload)
    return path


@pytest.mark.parametrize(("case", "message"), [
    ("missing", "does not exist"), ("not_json", "is not JSON"), ("a_list", "not a commchannels benchmark results"),
    ("no_rows", "not a commchannels benchmark results file"), ("missing_key", r"row 0: lacks \['seed'\]"),
    ("unknown_task", "unknown benchmark task 'referential-huge@1'"), ("old_version", "asks for version 9"),
    ("wrong_score", r"score 0.9; expected task.score\(test_acc\) = 0.5"), ("no_primary", "test_acc .* is None"),
    ("float_seed", "seed 0.5; expected an integer"),
])
def test_bad_files_give_errors_naming_the_file(tmp_path, case, message):
    path = _bad(tmp_path, case)
    with pytest.raises(ValueError, match=message) as err:
        rep.load_results([path])
    assert str(path) in str(err.value)


def test_a_run_in_two_files_is_refused(tmp_path):
    first = write_results(tmp_path / "first.json", synthetic_rows())
    second = write_results(tmp_path / "second.json", synthetic_rows()[:1])
    with pytest.raises(ValueError, match=r"second.json row 0 repeats the run .* of .*first.json row 0"):
        rep.load_results([first, second])
