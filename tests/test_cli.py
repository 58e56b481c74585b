"""The ``commchannels`` command: help texts, a tiny referential run, errors, the demo."""

import json

import pytest

from commchannels.cli import main

TINY = ["--n-attributes", "2", "--n-values", "5", "--n-candidates", "3", "--vocab-size", "6",
        "--max-len", "2", "--holdout-fraction", "0.2", "--sender-hidden", "16", "--receiver-hidden",
        "16", "--batch-size", "32", "--eval-every", "5", "--eval-games", "64"]


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["train", "referential", "--help"]])
def test_help_exits_zero(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    if "referential" in argv:
        assert "--method" in out and "st-gumbel" in out and "--max-seconds" in out


def test_train_referential_tiny_budget(tmp_path, capsys):
    run_dir = tmp_path / "run"
    code = main(["train", "referential", *TINY, "--steps", "10", "--method", "st-gumbel",
                 "--sender-sees-candidates", "--targets", "0.5", "0.9", "--run-dir", str(run_dir)])
    assert code == 0
    assert "train acc" in capsys.readouterr().out
    config = json.loads((run_dir / "config.json").read_text())
    assert config["method"] == "st-gumbel" and config["sender_sees_candidates"] is True
    assert config["targets"] == [0.5, 0.9]
    assert (run_dir / "language.pt").exists() and (run_dir / "checkpoint.pt").exists()


def test_bad_option_value_exits_2_with_the_reason(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "referential", "--vocab-size", "1", "--steps", "1"])
    assert exit_info.value.code == 2
    assert "vocab_size=1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "referential", "--method", "ppo"])
    assert exit_info.value.code == 2


def test_demo_tiny_budget(tmp_path, capsys):
    main(["demo", "--run-dir", str(tmp_path), "--seconds", "0.3"])
    out = capsys.readouterr().out
    assert "gumbel" in out and "reinforce" in out and "held-out acc" in out
    assert (tmp_path / "gumbel" / "language.pt").exists()
    assert (tmp_path / "reinforce" / "metrics.jsonl").exists()
