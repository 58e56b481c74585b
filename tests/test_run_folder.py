"""Run folders: refused unless resumed or overwritten, locked, stamped with a run id."""

import json
import subprocess
import sys
from dataclasses import dataclass

import pytest

from commchannels.config import Options, option
from commchannels.run_folder import RunFolder, RunOptions, replace_run


@dataclass(frozen=True)
class Toy(Options):
    """A trainer config for the tests."""

    lr: float = option(0.1, "learning rate")
    steps: int = option(10, "budget")
    run: RunOptions = option(RunOptions(), "run options")


def toy(run_dir, **changes) -> Toy:
    return Toy(run=RunOptions(run_dir=str(run_dir), tensorboard=False, **changes))


def open_folder(cfg: Toy, trainer: str = "toy") -> RunFolder:
    return RunFolder.open(cfg.run, cfg, trainer, resumable=("steps",))


def test_a_new_run_writes_its_id_and_config(tmp_path):
    with open_folder(toy(tmp_path / "run")) as folder:
        folder.log(1, {"a": 1.0})
        folder.save_checkpoint(1, {"x": 1})
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["run_id"] == folder.run_id and info["trainer"] == "toy"
    assert json.loads((tmp_path / "run" / "config.json").read_text())["lr"] == 0.1


def test_a_folder_holding_a_run_is_refused_unless_resumed_or_overwritten(tmp_path):
    run = tmp_path / "run"
    with open_folder(toy(run)) as folder:
        folder.save_checkpoint(3, {"x": 1})
        (run / "analysis.json").write_text("{}")  # written later by `commchannels analyse`
    with pytest.raises(ValueError, match="already holds a run; expected --resume .* --overwrite"):
        open_folder(toy(run))
    with open_folder(toy(run, overwrite=True)) as fresh:
        assert fresh.run_id != folder.run_id
    assert not (run / "analysis.json").exists() and not (run / "checkpoints").exists()


def test_a_folder_of_other_files_is_never_cleared(tmp_path):
    (tmp_path / "thesis.tex").write_text("precious")
    (tmp_path / "config.json").write_text("{}")  # a project's own config is not a run
    with pytest.raises(ValueError, match="holds files but no commchannels run"):
        open_folder(toy(tmp_path, overwrite=True))
    assert (tmp_path / "thesis.tex").read_text() == "precious"


def test_overwrite_refuses_a_run_folder_that_also_holds_other_files(tmp_path):
    run = tmp_path / "run"
    with open_folder(toy(run)):
        pass
    (run / "src").mkdir()
    (run / "src" / "main.py").write_text("precious")
    with pytest.raises(ValueError, match=r"holds a run and other files \['src'\]"):
        open_folder(toy(run, overwrite=True))
    assert (run / "src" / "main.py").read_text() == "precious" and (run / "run.json").exists()


def test_a_refused_resume_changes_nothing_in_the_folder(tmp_path):
    run = tmp_path / "run"
    with open_folder(toy(run)) as folder:
        folder.save_checkpoint(8, {"x": 1})
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    with pytest.raises(ValueError, match="checkpoint is at step 8, past the 4 steps"):
        RunFolder.open(toy(run, resume=True).run, Toy(steps=4, run=toy(run, resume=True).run), "toy",
                       resumable=("steps",), total_steps=4)
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    with pytest.raises(ValueError, match="holds no run"):  # a mistyped path is not created
        open_folder(toy(tmp_path / "typo", resume=True))
    assert not (tmp_path / "typo").exists()


def test_a_corrupt_config_on_resume_is_named(tmp_path):
    run = tmp_path / "run"
    with open_folder(toy(run)) as folder:
        folder.save_checkpoint(1, {})
    (run / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="config.json' cannot be read"):
        open_folder(toy(run, resume=True))


def test_resume_removes_the_previous_final_record(tmp_path):
    run = tmp_path / "run"
    with open_folder(toy(run)) as folder:
        folder.save_checkpoint(1, {})
        folder.write_json("final.json", {"steps": 1})
    with open_folder(toy(run, resume=True)):
        assert not (run / "final.json").exists()  # a run killed now leaves no stale result


def test_resume_loads_only_this_runs_checkpoint_with_the_same_options(tmp_path):
    run, other = tmp_path / "run", tmp_path / "other"
    with open_folder(toy(run)) as folder:
        folder.save_checkpoint(5, {"x": 5})
    with open_folder(toy(run, resume=True)) as resumed:
        assert resumed.resume_step == 5 and resumed.resume_state["x"] == 5 and resumed.run_id == folder.run_id
    with open_folder(Toy(steps=99, run=toy(run, resume=True).run)):
        pass  # the budget may change
    with pytest.raises(ValueError, match=r"these options differ from the saved run: \['lr'\]"):
        open_folder(Toy(lr=0.2, run=toy(run, resume=True).run))
    with pytest.raises(ValueError, match="holds a 'toy' run; expected a 'other' run"):
        open_folder(toy(run, resume=True), trainer="other")
    # another run's checkpoint copied in (what a stale checkpoints/ folder used to allow)
    with open_folder(toy(other)) as second:
        second.save_checkpoint(9, {"x": 9})
    (run / "checkpoints" / "latest.pt").write_bytes((other / "checkpoints" / "latest.pt").read_bytes())
    with pytest.raises(ValueError, match="belongs to run .*, not to this folder's run"):
        open_folder(toy(run, resume=True))


def test_resume_without_a_run_or_checkpoint_is_refused(tmp_path):
    with pytest.raises(ValueError, match="holds no run"):
        open_folder(toy(tmp_path / "empty", resume=True))
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "run.json").write_text("{}")
    with pytest.raises(ValueError, match="holds no run"):
        open_folder(toy(tmp_path / "old", resume=True))
    with open_folder(toy(tmp_path / "run")):
        pass
    with pytest.raises(ValueError, match="holds no checkpoint"):
        open_folder(toy(tmp_path / "run", resume=True))


def test_a_running_run_locks_its_folder(tmp_path):
    with open_folder(toy(tmp_path / "run")), pytest.raises(ValueError, match=r"in use by a running run \(pid \d+\)"):
        open_folder(toy(tmp_path / "run", overwrite=True))
    with open_folder(toy(tmp_path / "run", overwrite=True)):  # released on close
        pass


def test_the_lock_holds_across_processes_and_dies_with_its_process(tmp_path):
    script = ("import sys, time; from commchannels.run_folder import RunFolder, RunOptions; "
              f"o = RunOptions(run_dir={str(tmp_path / 'run')!r}, tensorboard=False); "
              "f = RunFolder.open(o, o, 'toy'); print('locked', flush=True); time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "locked"
        with pytest.raises(ValueError, match=f"in use by a running run \\(pid {child.pid}\\)"):
            open_folder(toy(tmp_path / "run", overwrite=True))
    finally:
        child.kill()  # SIGKILL: the kernel releases the lock
        child.wait()
    with open_folder(toy(tmp_path / "run", overwrite=True)):
        pass


def test_run_options_are_checked(tmp_path):
    with pytest.raises(ValueError, match="run_dir='' is not allowed"):
        RunOptions(run_dir="")
    with pytest.raises(ValueError, match="resume=True and overwrite=True are not allowed together"):
        RunOptions(run_dir="x", resume=True, overwrite=True)
    with pytest.raises(ValueError, match="resume=True needs run_dir"):
        RunOptions(resume=True)
    with pytest.raises(ValueError, match="checkpoint_every=5 needs run_dir"):
        RunOptions(checkpoint_every=5)
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="is a file; expected a folder path"):
        RunOptions(run_dir=str(tmp_path / "file" / "run"))
    assert replace_run(toy(tmp_path), resume=True).run.resume


def test_no_run_dir_keeps_metrics_in_memory():
    with RunFolder.open(RunOptions(), Toy(), "toy") as folder:
        folder.log(1, {"a": 1})
        assert folder.save_checkpoint(1, {}) is None and folder.path is None
    assert folder.logger.rows == [{"step": 1, "a": 1}]
