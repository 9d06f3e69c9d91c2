"""The ``cervattn`` command line: builds the parser from :mod:`cervattn.commands` and dispatches."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Sequence

from . import __version__
from .commands import COMMANDS
from .constants import RESEARCH_USE_NOTICE

EPILOG = f"{RESEARCH_USE_NOTICE} Documentation: https://github.com/cervattn/cervattn/tree/main/docs"


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, one subparser per module named in ``cervattn.commands.COMMANDS``."""
    parser = argparse.ArgumentParser(
        prog="cervattn",
        description="Interpretable attention networks for cervical-cell classification. " + RESEARCH_USE_NOTICE,
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"cervattn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f".commands.{name}", __package__)
        command = sub.add_parser(name, help=module.HELP, description=f"{module.HELP}. {RESEARCH_USE_NOTICE}",
                                 epilog=EPILOG)
        module.add_arguments(command)
        command.set_defaults(func=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cervattn`` console script."""
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
