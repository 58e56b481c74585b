"""`commchannels sweep`: the grid, one run folder per point, resume, the results table, bad values."""

import csv
import doctest
import json
import math

import pytest

import commchannels.sweep as sweep
from commchannels.cli import main
from commchannels.sweep import mean_ci95, parse_grid, run_sweep

TINY = ["--n-attributes", "2", "--n-values", "5", "--n-candidates", "3", "--vocab-size", "6", "--max-len", "2",
        "--holdout-fraction", "0.2", "--sender-hidden", "16", "--receiver-hidden", "16", "--batch-size", "32",
        "--eval-every", "2", "--eval-games", "32", "--steps", "4", "--no-progress", "--no-tensorboard"]
GRID = {"method": ["gumbel", "st-gumbel"], "lr": ["1e-3", "5e-3"]}


class InProcess:
    """Runs each point with the CLI in this process (a subprocess costs seconds of imports) and
    records the calls."""

    def __init__(self):
        self.calls = []

    def __call__(self, trainer, argv):
        self.calls.append(argv)
        return main(["train", trainer, *argv])


def test_doctests():
    assert doctest.testmod(sweep, optionflags=doctest.ELLIPSIS).failed == 0


def test_2x2_grid_with_two_seeds_gives_one_folder_per_point_and_a_table(tmp_path):
    runner, lines = InProcess(), []
    results = run_sweep("referential", GRID, [0, 1], tmp_path / "sweep", TINY, runner=runner, echo=lines.append)
    names = [f"method={m},lr={lr},seed={s}" for m in GRID["method"] for lr in GRID["lr"] for s in (0, 1)]
    assert [p["name"] for p in results["points"]] == names and len(runner.calls) == 8
    for point in results["points"]:
        config = json.loads((tmp_path / "sweep" / point["name"] / "config.json").read_text())
        assert config["method"] == point["values"]["method"] and config["lr"] == float(point["values"]["lr"])
        assert config["seed"] == point["seed"] and config["env"]["n_values"] == 5 and config["steps"] == 4
    group = results["groups"][1]  # gumbel, lr=5e-3
    finals = [json.loads((tmp_path / "sweep" / f"method=gumbel,lr=5e-3,seed={s}" / "final.json").read_text())
              for s in (0, 1)]
    mean, half = mean_ci95([f["train_acc"] for f in finals])
    assert group["metrics"]["train_acc"]["mean"] == pytest.approx(mean)
    assert group["metrics"]["train_acc"]["ci95"] == pytest.approx(half)
    rows = list(csv.DictReader((tmp_path / "sweep" / "results.csv").open()))
    assert [(r["method"], r["lr"], r["n_seeds"]) for r in rows] == [
        ("gumbel", "1e-3", "2"), ("gumbel", "5e-3", "2"), ("st-gumbel", "1e-3", "2"), ("st-gumbel", "5e-3", "2")]
    assert float(rows[1]["train_acc_mean"]) == pytest.approx(mean)
    assert json.loads((tmp_path / "sweep" / "results.json").read_text())["groups"][1]["seeds"] == [0, 1]
    table = lines[-1].splitlines()
    assert table[1].split()[:4] == ["method", "lr", "seeds", "train_acc"]
    assert table[3].split()[:3] == ["gumbel", "5e-3", "2"] and "±" in table[3]


def test_resume_skips_finished_points_and_continues_the_others(tmp_path):
    grid = {"method": ["gumbel", "st-gumbel"]}
    run_sweep("referential", grid, [0], tmp_path, TINY, runner=InProcess(), echo=lambda _: None)
    (tmp_path / "method=st-gumbel,seed=0" / "final.json").unlink()  # as if killed in its final evaluation
    with pytest.raises(ValueError, match="already holds a run of this sweep; expected --resume"):
        run_sweep("referential", grid, [0], tmp_path, TINY, runner=InProcess(), echo=lambda _: None)
    runner, lines = InProcess(), []
    results = run_sweep("referential", grid, [0], tmp_path, TINY, resume=True, runner=runner, echo=lines.append)
    assert len(runner.calls) == 1 and runner.calls[0][-1] == "--resume" and "st-gumbel" in runner.calls[0]
    assert lines[0].endswith("finished before, skipped") and [p["status"] for p in results["points"]] == [
        "skipped", "finished"]
    assert (tmp_path / "method=st-gumbel,seed=0" / "final.json").is_file()
    # a larger budget continues every point; other options are refused before anything runs
    longer = [*TINY[:-4], "--steps", "6", "--no-progress", "--no-tensorboard"]
    runner = InProcess()
    run_sweep("referential", grid, [0], tmp_path, longer, resume=True, runner=runner, echo=lambda _: None)
    assert len(runner.calls) == 2 and all(call[-1] == "--resume" for call in runner.calls)
    assert json.loads((tmp_path / "method=gumbel,seed=0" / "final.json").read_text())["steps"] == 6
    runner = InProcess()
    with pytest.raises(ValueError, match=r"holds a run with other options \(\['lr'\] differ\)"):
        run_sweep("referential", grid, [0], tmp_path, [*longer, "--lr", "0.01"], resume=True, runner=runner)
    assert runner.calls == []
    run_sweep("referential", grid, [0], tmp_path, [*longer, "--lr", "0.01"], overwrite=True, runner=runner,
              echo=lambda _: None)
    assert [call[-1] for call in runner.calls] == ["--overwrite", "--overwrite"]


@pytest.mark.parametrize("argv, message", [
    (["--grid", "method=gumbel,ppo"], "grid point method=ppo,seed=0: argument --method: invalid choice: 'ppo'"),
    (["--grid", "lr=1e-3,-1"], r"grid point lr=-1,seed=0: lr=-1.0 is out of range"),
    (["--grid", "length-cost=0,-1"], "grid point length-cost=-1,seed=0: env.length_cost=-1.0"),
    (["--grid", "nope=1"], "--nope is not an option of commchannels train referential"),
    (["--grid", "seed=1,2"], "the sweep sets --seed itself; use --seeds"),
    (["--grid", "method"], "expected OPTION=V1,V2"),
    (["--grid", "lr=1e-3", "--grid", "lr=2e-3"], "--grid lr is given twice"),
    (["--grid", "sender-sees-candidates=maybe"], "'maybe' is not a boolean"),
    (["--grid", "method=gumbel", "--method", "reinforce"], "--method is both a --grid key and an option"),
    (["--seed", "3"], "the sweep sets seed itself; use --seeds"),
    (["--seeds", "0", "0"], "repeats a seed"),
    (["--lr", "abc"], "argument --lr: invalid float value: 'abc'"),
])
def test_bad_values_fail_at_once_naming_the_option(tmp_path, capsys, argv, message):
    code = main(["sweep", "referential", *argv, "--run-dir", str(tmp_path / "sweep"), *TINY])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("commchannels: error: ")
    assert __import__("re").search(message, err), err
    assert not (tmp_path / "sweep").exists()  # nothing ran, nothing was written


def test_booleans_and_lists_in_the_grid(tmp_path):
    points = sweep.plan("referential", parse_grid(["sender_sees_candidates=true,false", "targets=0.5 0.9"]), [0],
                        tmp_path, TINY)
    assert [p.config.env.sender_sees_candidates for p in points] == [True, False]
    assert points[0].config.targets == (0.5, 0.9)
    assert points[0].name == "sender-sees-candidates=true,targets=0.5_0.9,seed=0"


def test_a_point_runs_in_its_own_process(tmp_path, capsys):
    code = main(["sweep", "referential", "--grid", "method=reinforce", "--run-dir", str(tmp_path), *TINY])
    assert code == 0
    out = capsys.readouterr().out
    assert "[1/1] method=reinforce,seed=0: running" in out and "train_acc" in out
    config = json.loads((tmp_path / "method=reinforce,seed=0" / "config.json").read_text())
    assert config["method"] == "reinforce" and config["run"]["run_dir"] == str(tmp_path / "method=reinforce,seed=0")


def test_failed_points_are_reported_after_the_others_ran(tmp_path):
    def runner(trainer, argv):
        return 1 if "st-gumbel" in argv else main(["train", trainer, *argv])

    with pytest.raises(RuntimeError, match=r"1 of 2 sweep points failed \(method=st-gumbel,seed=0\)"):
        run_sweep("referential", {"method": ["gumbel", "st-gumbel"]}, [0], tmp_path, TINY, runner=runner,
                  echo=lambda _: None)
    results = json.loads((tmp_path / "results.json").read_text())
    assert [g["failed"] for g in results["groups"]] == [[], [0]]


def test_interval_of_one_seed_is_undefined():
    assert mean_ci95([0.5]) == (0.5, None)
    mean, half = mean_ci95([0.0, 1.0])
    assert mean == 0.5 and half == pytest.approx(12.706 * math.sqrt(0.5) / math.sqrt(2), rel=1e-3)


@pytest.mark.slow
def test_2x2_sweep_end_to_end_in_subprocesses(tmp_path, capsys):
    code = main(["sweep", "referential", "--grid", "method=gumbel,reinforce", "--grid", "lr=1e-3,2e-3",
                 "--run-dir", str(tmp_path), *TINY])
    assert code == 0
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert len(rows) == 4 and all(r["n_seeds"] == "1" for r in rows)
    assert main(["sweep", "referential", "--grid", "method=gumbel,reinforce", "--grid", "lr=1e-3,2e-3",
                 "--run-dir", str(tmp_path), "--resume", *TINY]) == 0
    assert capsys.readouterr().out.count("finished before, skipped") == 4
