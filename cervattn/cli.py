"""The ``cervattn`` command line. It only parses arguments and calls library functions."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__
from .constants import RESEARCH_USE_NOTICE

EPILOG = f"{RESEARCH_USE_NOTICE} Documentation: https://github.com/cervattn/cervattn/tree/main/docs"


def _cmd_models(args: argparse.Namespace) -> int:
    from timm.models import get_arch_pretrained_cfgs

    from .factory import list_models
    from .profiling import model_cost

    names = list_models(args.pattern or "", include_test=args.include_test)
    if not names:
        sys.stderr.write(f"No cervattn model matches {args.pattern!r}; try `cervattn models` for all.\n")
        return 1
    rows = []
    for name in names:
        params, gmacs = model_cost(name, img_size=args.img_size)
        tags = ", ".join(get_arch_pretrained_cfgs(name)) or "-"
        rows.append((name, f"{params / 1e6:.2f}", f"{gmacs:.2f}", tags))
    header = ("model", "params (M)", f"GMACs @{args.img_size}px", "pretrained tags")
    _print_table(header, rows, markdown=args.markdown)
    return 0


def _print_table(header: Sequence[str], rows: Sequence[Sequence[str]], markdown: bool = False) -> None:
    if markdown:
        out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        out += ["| " + " | ".join(row) + " |" for row in rows]
    else:
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
        out = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows]]
    sys.stdout.write("\n".join(out) + "\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cervattn",
        description="Interpretable attention networks for cervical-cell classification. " + RESEARCH_USE_NOTICE,
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"cervattn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    models = sub.add_parser(
        "models", help="list the architectures with params, GMACs and pretrained tags", epilog=EPILOG
    )
    models.add_argument("pattern", nargs="?", default="", help="wildcard filter, e.g. 'rcan_*'")
    models.add_argument("--img-size", type=int, default=224, help="input size for GMACs (default 224)")
    models.add_argument("--markdown", action="store_true", help="print a markdown table")
    models.add_argument("--include-test", action="store_true", help="also list the tiny test_* models")
    models.set_defaults(func=_cmd_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cervattn`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
