"""``cervattn models [PATTERN]``: the architectures with params, GMACs and pretrained tags;
``--releases``: the released weights with their measured metrics."""

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
    parser.add_argument("--releases", action="store_true",
                        help="list the released weights with their metrics instead of the architectures")


def releases_table(pattern: str = "") -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """Header and rows of the released weights (``arch.tag`` matching ``pattern``) and their metrics."""
    from fnmatch import fnmatch

    from ..models import is_cervattn_arch
    from ..releases import list_releases

    header = ("release", "default of", "input px", "split", "accuracy %", "weighted F1 %", "macro F1 %",
              "field-level accuracy %")
    rows = []
    for r in list_releases():
        if pattern and not fnmatch(r.name, pattern) and not fnmatch(r.arch, pattern):
            continue
        # An untagged timm architecture keeps timm's default (ImageNet); only ours default to a release.
        default = r.arch if is_cervattn_arch(r.arch) and list_releases(r.arch)[0] is r else "-"
        size = r.cfg.get("input_size")
        m = r.metrics
        pct = [f"{100 * m[k]:.1f}" if k in m else "-" for k in ("accuracy", "weighted_f1", "macro_f1", "field_accuracy")]
        rows.append((r.name, default, str(size[-1]) if size else "-", r.metrics_split or "-", *pct))
    return header, rows


def run(args: argparse.Namespace) -> int:
    from timm.models import get_arch_pretrained_cfgs

    from ..factory import list_models
    from ..profiling import model_cost

    if args.releases:
        header, rows = releases_table(args.pattern)
        if not rows:
            sys.stderr.write(f"No release matches {args.pattern!r}; run `cervattn models --releases` to see all.\n")
            return 1
        print_table(header, rows, markdown=args.markdown)
        return 0
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
