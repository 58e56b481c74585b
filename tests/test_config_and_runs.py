"""Typed configs to command-line options, and run folders."""

import argparse
import json
from dataclasses import dataclass

import pytest
import torch

from commchannels.config import (
    add_config_arguments,
    check_choice,
    check_range,
    config_from_args,
    config_from_dict,
    config_to_dict,
    option,
)
from commchannels.runs import RunLogger, load_checkpoint, plot_curves, save_checkpoint


@dataclass(frozen=True)
class ToyConfig:
    """A config for the tests."""

    method: str = option("a", "which method", choices=("a", "b"))
    lr: float = option(0.1, "learning rate")
    hidden: tuple[int, ...] = option((8, 8), "hidden sizes")
    flag: bool = option(False, "a switch")
    run_dir: str | None = option(None, "where to write")

    def __post_init__(self) -> None:
        check_range("lr", self.lr, 0.0)


def parse(argv):
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, ToyConfig)
    return config_from_args(ToyConfig, parser.parse_args(argv))


def test_options_round_trip():
    cfg = parse(["--method", "b", "--lr", "0.5", "--hidden", "4", "2", "--flag", "--run-dir", "x"])
    assert cfg == ToyConfig(method="b", lr=0.5, hidden=(4, 2), flag=True, run_dir="x")
    assert parse([]) == ToyConfig()
    assert config_from_dict(ToyConfig, json.loads(json.dumps(config_to_dict(cfg)))) == cfg


def test_bad_values_name_the_option(capsys):
    with pytest.raises(SystemExit):
        parse(["--method", "c"])
    assert "invalid choice: 'c'" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"lr=-1.0 is out of range; expected a value in \[0.0, inf\]"):
        parse(["--lr", "-1"])
    with pytest.raises(ValueError, match=r"unknown ToyConfig keys \['nope'\]"):
        config_from_dict(ToyConfig, {"nope": 1})
    with pytest.raises(ValueError, match=r"mode='x' is not allowed; expected one of \['y'\]"):
        check_choice("mode", "x", ["y"])


def test_run_logger_writes_every_format(tmp_path):
    with RunLogger(tmp_path / "run", ToyConfig()) as log:
        log.log(0, {"acc": 0.5, "loss": float("nan")})
        log.log(10, {"acc": 0.9, "extra": 1})
        log.write_json("summary.json", {"done": True})
    run = tmp_path / "run"
    assert json.loads((run / "config.json").read_text())["hidden"] == [8, 8]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows == [{"step": 0, "acc": 0.5, "loss": None}, {"step": 10, "acc": 0.9, "extra": 1}]
    assert (run / "metrics.csv").read_text().splitlines()[0] == "step,acc,loss,extra"
    assert any(p.name.startswith("events.out.tfevents") for p in (run / "tb").iterdir())
    resumed = RunLogger(run, ToyConfig(), tensorboard=False, resume=True)
    assert len(resumed.rows) == 2


def test_checkpoints_are_atomic_and_weights_only(tmp_path):
    path = tmp_path / "ckpt" / "model.pt"
    save_checkpoint(path, {"w": torch.ones(3), "step": 4})
    assert load_checkpoint(path)["step"] == 4
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # no temporary left behind
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save({"obj": argparse.Namespace(a=1)}, tmp_path / "unsafe.pt")  # an arbitrary class
    with pytest.raises(Exception, match="Weights only load failed|Unsupported global"):
        load_checkpoint(tmp_path / "unsafe.pt")


def test_plot_curves_writes_png(tmp_path):
    path = plot_curves(tmp_path / "p.png", {"a": ([0, 1, 2], [0.1, None, 0.3])}, "step", "acc")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
