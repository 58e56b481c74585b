"""The ``commchannels`` command line.

``commchannels train NAME [--option value ...]`` runs one training loop; its options are
generated from the loop's config dataclass, so ``--help`` always matches the code.
Other commands: ``demo`` (the README's main job), ``analyse RUN_DIR`` (language report of a
saved referential run) and ``envs`` (the environment registry).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from commchannels.config import add_config_arguments, config_from_args

# name -> module exposing ``Config`` (a dataclass), ``train(cfg) -> Result`` and ``DESCRIPTION``.
TRAINERS = {
    "referential": "commchannels.training.referential",
    "teacher": "commchannels.training.teacher",
    "exchange": "commchannels.training.exchange",
}


def _load_trainer(name: str):
    try:
        return importlib.import_module(TRAINERS[name])
    except ModuleNotFoundError as err:  # a trainer still being written must not break the CLI
        if err.name and err.name.startswith("commchannels"):
            return None
        raise


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (one sub-parser per trainer)."""
    parser = argparse.ArgumentParser(
        prog="commchannels",
        description="Environments and training code for communication channels between learning models: "
        "output exchange (train exchange), a teacher customising a student (train teacher) and emergent "
        "language in referential games (train referential).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train agents in one of the three settings")
    trainers = train.add_subparsers(dest="trainer", required=True, metavar="SETTING")
    for name in TRAINERS:
        module = _load_trainer(name)
        if module is None:
            continue
        sub = trainers.add_parser(name, help=module.DESCRIPTION, description=module.DESCRIPTION)
        add_config_arguments(sub, module.Config)

    demo = commands.add_parser("demo", help="train the standard referential game two ways and compare")
    demo.add_argument("--run-dir", default="runs/demo", help="where the demo writes its runs")
    demo.add_argument("--seconds", type=float, default=50.0, help="wall-time budget per method")

    analyse = commands.add_parser("analyse", help="language metrics report of a saved referential run")
    analyse.add_argument("run_dir", help="run folder written by `commchannels train referential`")

    commands.add_parser("envs", help="list the registered environments")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``commchannels`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            module = _load_trainer(args.trainer)
            config = config_from_args(module.Config, args)
            result = module.train(config)
            if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 reports for all
                print(module.summarize(result) if hasattr(module, "summarize") else result.final)
        elif args.command == "demo":
            from commchannels.demo import run_demo

            run_demo(args.run_dir, args.seconds)
        elif args.command == "analyse":
            from commchannels.analysis import analyse_run

            print(analyse_run(args.run_dir))
        elif args.command == "envs":
            from commchannels.registry import registry_table

            print(registry_table())
    except (ValueError, FileNotFoundError) as err:
        parser.exit(2, f"commchannels: error: {err}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
