"""`commchannels analyse RUN_DIR`: report, analysis.json, symbol_usage.png and clear errors."""

import itertools
import json

import numpy as np
import pytest
import torch

from commchannels.analysis import LanguageFileError, analyse_run, load_language

SIZES = [4, 5, 3]


def write_language(run_dir, **overrides):
    """A perfectly compositional language (disjoint symbols per attribute) as language.pt."""
    meanings = torch.tensor(list(itertools.product(*(range(s) for s in SIZES))))
    offsets = torch.tensor([0, 4, 9])
    messages = torch.cat([meanings + 1 + offsets, torch.zeros(len(meanings), 1, dtype=torch.long)], 1)
    data = {"meanings": meanings, "messages": messages, "attribute_sizes": SIZES,
            "vocab_size": 13, "split": ["test" if i % 5 == 0 else "train" for i in range(60)]}
    data.update(overrides)
    data = {k: v for k, v in data.items() if v is not None}
    run_dir.mkdir(parents=True, exist_ok=True)
    torch.save(data, run_dir / "language.pt")
    return run_dir


def test_analyse_writes_json_png_and_returns_table(tmp_path):
    run = write_language(tmp_path / "run")
    text = analyse_run(run)
    lines = text.splitlines()
    assert lines[1].split()[:4] == ["metric", "all", "train", "test"]
    assert any(line.split()[:4] == ["topsim", "1.000", "1.000", "1.000"] for line in lines)
    summary = json.loads((run / "analysis.json").read_text())
    assert set(summary["metrics"]) == {"all", "train", "test"}
    assert summary["metrics"]["all"]["posdis"] == pytest.approx(1.0)
    assert summary["metrics"]["test"]["n_objects"] == 12
    png = run / "symbol_usage.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 2000


def test_split_is_optional(tmp_path):
    run = write_language(tmp_path, split=None)
    analyse_run(run)
    summary = json.loads((run / "analysis.json").read_text())
    assert list(summary["metrics"]) == ["all"]
    assert load_language(run / "language.pt")["split"] is None


def test_missing_file_names_it(tmp_path):
    with pytest.raises(LanguageFileError, match="language.pt does not exist") as info:
        analyse_run(tmp_path / "nowhere")
    assert isinstance(info.value, ValueError) and isinstance(info.value, FileNotFoundError)


def test_unreadable_and_wrong_type_files(tmp_path):
    (tmp_path / "language.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="language.pt could not be loaded.*expected a dict"):
        analyse_run(tmp_path)
    torch.save(torch.zeros(3), tmp_path / "language.pt")
    with pytest.raises(ValueError, match="holds a Tensor; expected a dict"):
        analyse_run(tmp_path)


@pytest.mark.parametrize("overrides, message", [
    ({"vocab_size": None}, r"lacks \['vocab_size'\]"),
    ({"meanings": torch.zeros(60, dtype=torch.long)}, "meanings has shape"),
    ({"split": ["train"] * 3}, "'split' must be a list of 60 strings"),
    ({"attribute_sizes": [4, 2, 3]}, r"attribute_sizes\[1\]=2"),
    ({"vocab_size": 5}, "vocab_size=5"),
    ({"messages": torch.zeros(59, 4, dtype=torch.long)}, "one message per meaning"),
])
def test_malformed_contents_name_the_file_and_the_problem(tmp_path, overrides, message):
    run = write_language(tmp_path, **overrides)
    with pytest.raises(ValueError, match=message) as info:
        analyse_run(run)
    assert "language.pt" in str(info.value)


def test_cli_analyse_prints_the_table(tmp_path, capsys):
    from commchannels.cli import main

    run = write_language(tmp_path)
    assert main(["analyse", str(run)]) == 0
    assert "posdis" in capsys.readouterr().out
    assert np.isclose(json.loads((run / "analysis.json").read_text())["metrics"]["all"]["bosdis"], 1)


# ---------------------------------------------------------------------- interaction.pt
def write_interaction(run_dir, correct=None, **overrides):
    """The compositional language of write_language as an Interaction (what the trainer saves)."""
    from commchannels.training.interaction import Interaction

    meanings = torch.tensor(list(itertools.product(*(range(s) for s in SIZES))))
    messages = torch.cat([meanings + 1 + torch.tensor([0, 4, 9]), torch.zeros(len(meanings), 1, dtype=torch.long)], 1)
    split = torch.tensor([1 if i % 5 == 0 else 0 for i in range(60)])
    fields = dict(message=messages, message_length=torch.full((60,), 4), meanings=meanings,
                  aux={"split": split, "correct": torch.ones(60) if correct is None else correct},
                  info={"vocab_size": 13, "attribute_sizes": SIZES, "splits": ["train", "test"]})
    fields.update(overrides)
    run_dir.mkdir(parents=True, exist_ok=True)
    Interaction(**fields).save(run_dir / "interaction.pt")
    return run_dir


def test_analyse_prefers_the_interaction_and_reports_receiver_accuracy(tmp_path):
    correct = torch.tensor([float(i % 2) for i in range(60)])  # half right, every test game (i % 5 == 0) too
    run = write_interaction(tmp_path / "run", correct=correct)
    write_language(run, vocab_size=99)  # an older file beside it is not read
    text = analyse_run(run)
    row = next(line.split() for line in text.splitlines() if line.startswith("receiver_acc"))
    assert row[1:4] == ["0.500", "0.500", "0.500"]
    summary = json.loads((run / "analysis.json").read_text())
    assert summary["file"].endswith("interaction.pt") and summary["vocab_size"] == 13
    assert summary["metrics"]["test"]["n_objects"] == 12 and summary["metrics"]["all"]["topsim"] == pytest.approx(1)
    # the language metrics are those of the same language saved as language.pt
    other = write_language(tmp_path / "old")
    analyse_run(other)
    old = json.loads((other / "analysis.json").read_text())["metrics"]
    assert {k: {m: v for m, v in r.items() if m != "receiver_acc"} for k, r in summary["metrics"].items()} == old


def test_malformed_interaction_names_the_file(tmp_path):
    run = write_interaction(tmp_path, meanings=None)
    with pytest.raises(ValueError, match="interaction.pt lacks meanings"):
        analyse_run(run)
    run = write_interaction(tmp_path / "sizes", info={"vocab_size": 13, "attribute_sizes": [4, 2, 3]})
    with pytest.raises(ValueError, match=r"interaction.pt: .*attribute_sizes\[1\]=2"):
        analyse_run(run)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "interaction.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match="interaction.pt"):
        analyse_run(tmp_path / "junk")


def test_a_trained_run_is_analysed_from_its_interaction(tmp_path):
    from commchannels.training.interaction import Interaction
    from commchannels.training.referential import Config, train

    run = tmp_path / "run"
    env = dict(n_attributes=2, n_values=4, n_candidates=3, vocab_size=6, max_len=2, holdout_fraction=0.25)
    result = train(Config(env=env, sender_hidden=16, receiver_hidden=16, batch_size=32, steps=10, eval_every=5,
                          eval_games=64, run={"run_dir": str(run), "progress": False}))
    saved = Interaction.load(run / "interaction.pt")
    assert len(saved) == 16 and torch.equal(saved.message, result.extras["interaction"].message)
    text = analyse_run(run)
    assert "receiver_acc" in text and "language of" in text
