"""The ``commchannels`` command: help texts, a tiny referential run, errors, the demo."""

import json

import pytest

from commchannels.cli import main

TINY = ["--n-attributes", "2", "--n-values", "5", "--n-candidates", "3", "--vocab-size", "6",
        "--max-len", "2", "--holdout-fraction", "0.2", "--sender-hidden", "16", "--receiver-hidden",
        "16", "--batch-size", "32", "--eval-every", "5", "--eval-games", "64", "--no-progress"]


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["train", "referential", "--help"],
                                  ["train", "teacher", "--help"], ["train", "exchange", "--help"]])
def test_help_exits_zero(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    if "referential" in argv:
        assert "--method" in out and "st-gumbel" in out and "--max-seconds" in out
        assert "--env.n-attributes" in out and "--resume" in out and "--overwrite" in out


def test_help_shows_the_chosen_games_own_options(capsys):
    with pytest.raises(SystemExit):
        main(["train", "referential", "--env-modules", "examples/colour_game.py", "--env-id", "colours_v0",
              "--help"])
    out = capsys.readouterr().out
    assert "--n-hues" in out and "--n-attributes" not in out


def test_train_referential_tiny_budget(tmp_path, capsys):
    run_dir = tmp_path / "run"
    code = main(["train", "referential", *TINY, "--steps", "10", "--method", "st-gumbel",
                 "--sender-sees-candidates", "--targets", "0.5", "0.9", "--run-dir", str(run_dir)])
    assert code == 0
    assert "train acc" in capsys.readouterr().out
    config = json.loads((run_dir / "config.json").read_text())
    assert config["method"] == "st-gumbel" and config["env"]["sender_sees_candidates"] is True
    assert config["targets"] == [0.5, 0.9]
    assert (run_dir / "language.pt").exists() and (run_dir / "checkpoints" / "latest.pt").exists()


def test_a_custom_game_trains_from_the_cli_and_records_its_arguments(tmp_path, capsys):
    run_dir = tmp_path / "colours"
    code = main(["train", "referential", "--env-modules", "examples/colour_game.py", "--env-id", "colours_v0",
                 "--n-hues", "4", "--n-candidates", "3", "--steps", "4", "--eval-every", "2", "--eval-games", "32",
                 "--no-progress", "--run-dir", str(run_dir)])
    assert code == 0, capsys.readouterr().err
    config = json.loads((run_dir / "config.json").read_text())
    assert config["env_id"] == "colours_v0" and config["env"]["n_hues"] == 4 and config["env"]["shades"] == 4


@pytest.mark.parametrize("argv, message", [
    (["--vocab-size", "1"], "vocab_size=1 is out of range"),
    (["--lr", "nan"], "lr=nan is not allowed; expected a finite number"),
    (["--temperature", "inf"], "temperature=inf"),
    (["--seed", "99999999999999999999"], "seed=99999999999999999999 is out of range"),
    (["--threads", "100000"], "threads=100000 is out of range"),
    (["--vocab-size", "1000000000"], "vocab_size=1000000000 is out of range"),
    (["--batch-size", "5000000", "--eval-games", "5000000"], "needs about .* GiB of memory"),
    (["--run-dir", ""], "run_dir='' is not allowed"),
    (["--env-id", "nope"], "env_id='nope' is not registered"),
    (["--env-modules", "no/such/file.py"], "no/such/file.py"),
])
def test_bad_option_value_exits_2_with_the_reason(argv, message, capsys):
    assert main(["train", "referential", *argv, "--steps", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("commchannels: error: ") and "Traceback" not in err
    assert pytest.importorskip("re").search(message, err), err


def test_argparse_errors_exit_2(capsys):
    for argv in (["--method", "ppo"], ["--batch-size", "1e9"], ["--n-candidates", "3.5"]):
        with pytest.raises(SystemExit) as exit_info:
            main(["train", "referential", *argv])
        assert exit_info.value.code == 2


def test_run_dir_none_keeps_nothing_on_disk(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "referential", *TINY, "--steps", "2", "--run-dir", "None"]) == 0
    assert list(tmp_path.iterdir()) == []


def test_folder_failures_are_errors_not_tracebacks(tmp_path, capsys):
    run_dir = tmp_path / "run"
    base = ["train", "referential", *TINY, "--steps", "4", "--run-dir", str(run_dir)]
    assert main(base) == 0
    capsys.readouterr()
    assert main(base) == 2 and "already holds a run" in capsys.readouterr().err
    assert main([*base, "--resume", "--steps", "2"]) == 2
    assert "checkpoint is at step 4, past the 2 steps" in capsys.readouterr().err
    (run_dir / "checkpoints" / "latest.pt").write_bytes(b"not a checkpoint")
    assert main([*base, "--resume", "--steps", "8"]) == 2
    assert "cannot be read" in capsys.readouterr().err
    assert main([*base[:-1], str(run_dir / "config.json" / "sub")]) == 2
    assert "is a file" in capsys.readouterr().err


def test_a_broken_trainer_module_is_not_hidden(monkeypatch):
    import commchannels.cli as cli

    monkeypatch.setitem(cli.TRAINERS, "broken", "commchannels.training.no_such_module")
    with pytest.raises(ModuleNotFoundError):
        cli.build_parser([])


def test_demo_tiny_budget_reruns_into_the_same_folder(tmp_path, capsys):
    for _ in range(2):  # the demo replaces its own earlier runs
        main(["demo", "--run-dir", str(tmp_path), "--seconds", "0.3"])
    out = capsys.readouterr().out
    assert "gumbel" in out and "reinforce" in out and "held-out acc" in out
    assert (tmp_path / "gumbel" / "language.pt").exists()
    assert (tmp_path / "reinforce" / "metrics.jsonl").exists()
