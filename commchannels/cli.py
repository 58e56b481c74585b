"""The ``commchannels`` command line.

``commchannels train NAME [--option value ...]`` runs one training loop; its options are
generated from the loop's config dataclass (nested options flattened: ``--run-dir`` or
``--run.run-dir``), so ``--help`` always matches the code. Other commands: ``demo`` (the
README's main job), ``analyse RUN_DIR`` (language report of a saved referential run),
``sweep NAME --grid OPTION=V1,V2 --seeds 0 1 --run-dir DIR [--option value ...]`` (a grid of
runs, one process each, and a results table: :mod:`commchannels.sweep`), ``benchmark`` (tasks,
methods run under one protocol, reference scores and a report: :mod:`commchannels.benchmark`)
and ``envs`` (the environment registry).

Every failure a user can cause (a bad option, a folder holding another run, a corrupt
checkpoint, a worker that died) ends with ``commchannels: error: ...`` and exit code 2
(``COMMCHANNELS_DEBUG=1`` shows the traceback instead); a run
stopped by SIGINT / SIGTERM saves a checkpoint and exits with 128 + the signal number.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from commchannels.config import add_config_arguments, config_from_args
from commchannels.training.protocol import Interrupted

# name -> module exposing ``Config`` (a dataclass), ``train(cfg) -> Result`` and ``DESCRIPTION``;
# optionally ``cli_nested(argv) -> {field: options class}`` for nested options that depend on others.
TRAINERS = {
    "referential": "commchannels.training.referential",
    "teacher": "commchannels.training.teacher",
    "exchange": "commchannels.training.exchange",
}


def _load_trainer(name: str) -> ModuleType:
    return importlib.import_module(TRAINERS[name])


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The full argument parser (one sub-parser per trainer); ``argv`` resolves options that
    depend on others (the game of ``--env-id``)."""
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
        sub = trainers.add_parser(name, help=module.DESCRIPTION, description=module.DESCRIPTION,
                                  argument_default=argparse.SUPPRESS)
        resolved = module.cli_nested(argv) if hasattr(module, "cli_nested") and argv[1:2] == [name] else None
        add_config_arguments(sub, module.Config, resolved)

    demo = commands.add_parser("demo", help="train the standard referential game two ways and compare")
    demo.add_argument("--run-dir", default="runs/demo", help="where the demo writes its runs (replacing "
                                                             "the demo's earlier runs there)")
    demo.add_argument("--seconds", type=float, default=50.0, help="wall-time budget per method")

    analyse = commands.add_parser("analyse", help="language metrics report of a saved referential run")
    analyse.add_argument("run_dir", help="run folder written by `commchannels train referential`")

    from commchannels.sweep import DESCRIPTION as SWEEP_DESCRIPTION
    from commchannels.sweep import HELP as SWEEP_HELP
    from commchannels.sweep import add_sweep_arguments

    # allow_abbrev=False: a trainer's --seed must not be read as the sweep's --seeds
    sweep = commands.add_parser("sweep", help=SWEEP_HELP, description=SWEEP_DESCRIPTION, allow_abbrev=False)
    add_sweep_arguments(sweep, list(TRAINERS))

    from commchannels.benchmark.cli import DESCRIPTION as BENCHMARK_DESCRIPTION
    from commchannels.benchmark.cli import HELP as BENCHMARK_HELP
    from commchannels.benchmark.cli import add_benchmark_arguments

    benchmark = commands.add_parser("benchmark", help=BENCHMARK_HELP, description=BENCHMARK_DESCRIPTION)
    add_benchmark_arguments(benchmark)

    commands.add_parser("envs", help="list the registered environments")
    return parser


def _run(args: argparse.Namespace, passthrough: Sequence[str] = ()) -> None:
    if args.command == "sweep":
        from commchannels.sweep import main as sweep_main

        sweep_main(args, passthrough)
    elif args.command == "train":
        module = _load_trainer(args.trainer)
        options = argparse.Namespace(**{k: v for k, v in vars(args).items() if k not in ("command", "trainer")})
        config = config_from_args(module.Config, options)
        result = module.train(config)
        if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 reports for all
            print(module.summarize(result) if hasattr(module, "summarize") else result.final)
    elif args.command == "demo":
        from commchannels.demo import run_demo

        run_demo(args.run_dir, args.seconds)
    elif args.command == "analyse":
        from commchannels.analysis import analyse_run

        print(analyse_run(args.run_dir))
    elif args.command == "benchmark":
        from commchannels.benchmark.cli import main as benchmark_main

        benchmark_main(args)
    elif args.command == "envs":
        from commchannels.registry import registry_table

        print(registry_table())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``commchannels`` command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser(argv)
    except (ValueError, OSError) as err:  # e.g. --env-modules naming a file that cannot be imported
        print(f"commchannels: error: {err}", file=sys.stderr)
        return 2
    if argv[:1] == ["sweep"]:  # the trainer's options pass through the sweep to every point
        args, passthrough = parser.parse_known_args(argv)
    else:
        args, passthrough = parser.parse_args(argv), []
    try:
        _run(args, passthrough)
    except Interrupted as err:
        print(f"commchannels: {err}", file=sys.stderr)
        return 128 + err.signum
    except KeyboardInterrupt:
        print("commchannels: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, RuntimeError) as err:  # the user's input or environment: no traceback
        if os.environ.get("COMMCHANNELS_DEBUG"):  # a developer chasing a bug wants the traceback
            raise
        print(f"commchannels: error: {str(err) or type(err).__name__}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
