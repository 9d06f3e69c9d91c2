"""Subcommands of the ``cervattn`` command line, one module each.

Every module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``.
A module only parses arguments and calls library functions. Add a new command by writing its
module and naming it in :data:`COMMANDS`.
"""

COMMANDS = ("models", "train", "evaluate", "predict", "explain", "export", "publish")
