"""``cervattn models [PATTERN]``: the architectures with params, GMACs and pretrained tags."""

from __future__ import annotations

import argparse
import sys

from ._table import print_table

HELP = "list the architectures with params, GMACs and pretrained tags"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pattern", nargs="?", default="", help="wildcard filter, e.g. 'rcan_*'")
    parser.add_argument("--img-size", type=int, default=224, help="input size for GMACs (default 224)")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    parser.add_argument("--include-test", action="store_true", help="also list the tiny test_* models")


def run(args: argparse.Namespace) -> int:
    from timm.models import get_arch_pretrained_cfgs

    from ..factory import list_models
    from ..profiling import model_cost

    names = list_models(args.pattern, include_test=args.include_test)
    if not names:
        sys.stderr.write(f"No cervattn model matches {args.pattern!r}; run `cervattn models` to see all.\n")
        return 1
    rows = []
    for name in names:
        params, gmacs = model_cost(name, img_size=args.img_size)
        cfgs = get_arch_pretrained_cfgs(name)
        tags = ", ".join(tag for tag, cfg in cfgs.items() if cfg.has_weights) or "-"
        rows.append((name, f"{params / 1e6:.2f}", f"{gmacs:.2f}", tags))
    header = ("model", "params (M)", f"GMACs @{args.img_size}px", "pretrained tags")
    print_table(header, rows, markdown=args.markdown)
    return 0
