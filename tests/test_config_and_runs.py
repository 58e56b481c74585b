"""Typed configs to command-line options, and run folders."""

import argparse
import json
import os
import stat
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from commchannels.config import (
    Options,
    add_config_arguments,
    check_choice,
    check_int,
    check_memory,
    check_range,
    config_from_args,
    config_from_dict,
    config_to_dict,
    option,
)
from commchannels.runs import (
    CorruptCheckpointError,
    RunLogger,
    atomic_write_text,
    load_checkpoint,
    plot_curves,
    read_metrics,
    save_checkpoint,
    write_csv,
)


@dataclass(frozen=True)
class Inner(Options):
    """Nested options (an environment's settings)."""

    horizon: int = option(4, "episode length", low=1)
    scale: float = option(1.0, "a scale", gt=0.0)
    lr: float = option(0.5, "clashes with the outer lr: only --inner.lr is offered")


@dataclass(frozen=True)
class ToyConfig(Options):
    """A config for the tests."""

    method: str = option("a", "which method", choices=("a", "b"))
    lr: float = option(0.1, "learning rate", low=0.0)
    hidden: tuple[int, ...] = option((8, 8), "hidden sizes", low=1)
    flag: bool = option(False, "a switch")
    run_dir: str | None = option(None, "where to write")
    inner: Inner = option(Inner(), "nested options")


def parse(argv):
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, ToyConfig)
    return config_from_args(ToyConfig, parser.parse_args(argv))


def test_options_round_trip():
    cfg = parse(["--method", "b", "--lr", "0.5", "--hidden", "4", "2", "--flag", "--run-dir", "x",
                 "--horizon", "7", "--inner.lr", "0.25"])
    assert cfg == ToyConfig(method="b", lr=0.5, hidden=(4, 2), flag=True, run_dir="x",
                            inner=Inner(horizon=7, lr=0.25))
    assert parse([]) == ToyConfig()
    assert parse(["--inner.horizon", "9"]).inner.horizon == 9
    assert parse(["--run-dir", "None"]).run_dir is None
    assert ToyConfig(inner={"scale": 2.0}).inner == Inner(scale=2.0)
    assert config_from_dict(ToyConfig, json.loads(json.dumps(config_to_dict(cfg)))) == cfg


def test_bad_values_name_the_option(capsys):
    with pytest.raises(SystemExit):
        parse(["--method", "c"])
    assert "invalid choice: 'c'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse(["--horizon", "2.5"])
    assert "invalid int value: '2.5'" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"lr=-1.0 is out of range; expected a value in \[0.0, inf\]"):
        parse(["--lr", "-1"])
    with pytest.raises(ValueError, match=r"unknown ToyConfig options \['nope'\]"):
        config_from_dict(ToyConfig, {"nope": 1})
    with pytest.raises(ValueError, match=r"unknown Inner options \['inner.nope'\]"):
        ToyConfig(inner={"nope": 1})
    with pytest.raises(ValueError, match=r"mode='x' is not allowed; expected one of \['y'\]"):
        check_choice("mode", "x", ["y"])


@pytest.mark.parametrize("kwargs, message", [
    ({"lr": float("nan")}, "lr=nan is not allowed; expected a finite number"),
    ({"lr": float("inf")}, "lr=inf is not allowed"),
    ({"lr": True}, "lr=True is not a number"),
    ({"lr": "0.1"}, "lr='0.1' is not a number"),
    ({"hidden": (4, 2.5)}, "hidden=2.5 is not an integer"),
    ({"hidden": (4, 0)}, "hidden=0 is out of range"),
    ({"hidden": 4}, "hidden=4 is not a sequence"),
    ({"flag": 1}, "flag=1 is not a bool"),
    ({"method": 3}, "method=3 is not a string"),
    ({"inner": {"horizon": 3.0}}, "horizon=3.0 is not an integer"),
    ({"inner": {"horizon": True}}, "horizon=True is not an integer"),
    ({"inner": {"scale": 0.0}}, r"scale=0.0 is out of range; expected a value in \(0.0, inf\]"),
    ({"inner": {"scale": float("nan")}}, "scale=nan"),
    ({"inner": 3}, "inner=3 is not allowed; expected Inner or a dict"),
])
def test_field_types_and_finiteness_are_checked_once(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ToyConfig(**kwargs)


def test_numpy_scalars_are_normalised():
    cfg = ToyConfig(lr=np.float32(0.5), hidden=np.array([3, 4]), inner={"horizon": np.int64(3)})
    assert type(cfg.lr) is float and cfg.hidden == (3, 4) and type(cfg.inner.horizon) is int


def test_value_checks():
    assert check_int("n", np.int16(3), 1) == 3
    for bad in (3.0, 2.7, True, "3", float("nan"), None):
        with pytest.raises(ValueError, match="n=.* is not an integer"):
            check_int("n", bad)
    with pytest.raises(ValueError, match="is not a number"):
        check_range("x", None)
    with pytest.raises(ValueError, match="x=-inf is not allowed"):
        check_range("x", float("-inf"))
    with pytest.raises(ValueError, match=r"huge needs about 1024.0 GiB of memory"):
        check_memory("huge", 2**40)
    check_memory("small", 2**20)


def test_run_logger_writes_every_format(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    with RunLogger(run) as log:
        log.log(0, {"acc": 0.5, "loss": float("nan")})
        log.log(10, {"acc": 0.9, "extra": 1})
        log.write_json("summary.json", {"done": True})
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows == [{"step": 0, "acc": 0.5, "loss": None}, {"step": 10, "acc": 0.9, "extra": 1}]
    assert (run / "metrics.csv").read_text().splitlines()[0] == "step,acc,loss,extra"
    assert any(p.name.startswith("events.out.tfevents") for p in (run / "tb").iterdir())
    assert len(RunLogger(run, tensorboard=False, resume_step=10).rows) == 2
    assert len(RunLogger(run, tensorboard=False, resume_step=5).rows) == 1  # rows after the checkpoint go
    assert len(read_metrics(run / "metrics.jsonl")) == 1


def test_a_partial_last_metrics_line_is_dropped_and_a_corrupt_middle_one_named(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "a": 1}\n{"step": 2, "a"')  # killed while writing the last line
    assert read_metrics(path) == [{"step": 1, "a": 1}]
    path.write_text('{"step": 1}\nnot json\n{"step": 3}\n')
    with pytest.raises(ValueError, match="line 2 is not JSON"):
        read_metrics(path)


def test_written_files_respect_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.json", "{}")
        save_checkpoint(tmp_path / "c.pt", {"x": 1})
        write_csv(tmp_path / "m.csv", [{"a": 1}])
    finally:
        os.umask(old)
    for name in ("a.json", "c.pt", "m.csv"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name


def test_checkpoints_are_atomic_and_weights_only(tmp_path):
    path = tmp_path / "ckpt" / "model.pt"
    save_checkpoint(path, {"w": torch.ones(3), "step": 4})
    assert load_checkpoint(path)["step"] == 4
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # no temporary left behind
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    torch.save({"obj": argparse.Namespace(a=1)}, tmp_path / "unsafe.pt")  # an arbitrary class
    with pytest.raises(CorruptCheckpointError, match="cannot be read"):
        load_checkpoint(tmp_path / "unsafe.pt")
    (tmp_path / "cut.pt").write_bytes(path.read_bytes()[:50])  # a truncated file
    with pytest.raises(CorruptCheckpointError, match="cut.pt' cannot be read"):
        load_checkpoint(tmp_path / "cut.pt")


def test_plot_curves_writes_png(tmp_path):
    path = plot_curves(tmp_path / "p.png", {"a": ([0, 1, 2], [0.1, None, 0.3])}, "step", "acc")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
