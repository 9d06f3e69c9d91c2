"""``cervattn export CHECKPOINT --out FOLDER``: a training checkpoint as a Hub-layout release folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "write a training checkpoint as a Hub release folder (config.json, model.safetensors, model card)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", help="training checkpoint: .pt/.pth dict (read with weights_only=True) "
                        "or .safetensors with a JSON sidecar")
    parser.add_argument("--out", required=True, help="release folder to write, e.g. hub/rcan_densenet121.sipakmed_cells")
    parser.add_argument("--eval-json", help="evaluation report (JSON) shown in the model card and copied beside it")
    parser.add_argument("--tag", default="sipakmed_cells", help="pretrained tag: what the weights were trained on "
                        "(default: sipakmed_cells)")
    dtype = parser.add_mutually_exclusive_group()
    dtype.add_argument("--fp32", dest="dtype", action="store_const", const="fp32", help="fp32 weights (default, exact)")
    dtype.add_argument("--fp16", dest="dtype", action="store_const", const="fp16", help="fp16 weights (half the size)")
    parser.set_defaults(dtype="fp32")
    parser.add_argument("--arch", help="architecture, if the checkpoint does not record it")
    parser.add_argument("--dataset", help="training data (default: from the checkpoint, else SIPaKMeD)")
    parser.add_argument("--split", help="split in words, e.g. 'grouped split: train / val / test' "
                        "(default: from the checkpoint)")
    parser.add_argument("--repo-id", help="Hub repository (default: cervattn/<arch>.<tag>)")
    parser.add_argument("--notes", help="markdown file whose text becomes the card's Notes section")


def run(args: argparse.Namespace) -> int:
    from ..export import export

    try:
        result = export(
            args.checkpoint, args.out, eval_json=args.eval_json, tag=args.tag, dtype=args.dtype, arch=args.arch,
            dataset=args.dataset, split=args.split, repo_id=args.repo_id,
            notes=Path(args.notes).read_text() if args.notes else None,
        )
    except (FileNotFoundError, ValueError) as e:
        sys.stderr.write(f"cervattn export: {e}\n")
        return 1
    out = sys.stdout
    out.write(f"Wrote {result.name} ({result.dtype}) to {result.folder}:\n")
    for name in sorted(result.sha256):
        out.write(f"  {name:<20} {result.sizes[name]:>12,} bytes\n")
    out.write("\nsha256:\n" + result.sha256_lines())
    out.write("\nRelease table entry (cervattn/releases.py, RELEASES; best weights of an architecture first):\n\n")
    out.write(result.release_entry())
    if not result.split:
        out.write("\nNote: no split recorded; fill in split= (what trained, selected and evaluated the weights).\n")
    if result.folder.name != result.name:
        out.write(f"\nNote: mirrors look for the folder name {result.name!r}; this folder is {result.folder.name!r}.\n")
    out.write(f"\nNext: cervattn publish {result.folder} --repo-id {result.repo_id} --dry-run\n")
    return 0
