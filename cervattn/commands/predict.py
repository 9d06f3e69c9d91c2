"""``cervattn predict IMAGE_OR_FOLDER... --model NAME``: label and probabilities per image."""

from __future__ import annotations

import argparse
import json
import sys

HELP = "classify image files or folders of images; print label and probabilities"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", metavar="IMAGE_OR_FOLDER", help="image files or folders (searched recursively)")
    parser.add_argument("--model", required=True, help="name with a pretrained tag, a release folder, or a training run")
    parser.add_argument("--json", action="store_true", help="print JSON records instead of a table")
    parser.add_argument("--top-k", type=int, help="show the K most probable classes per image")
    parser.add_argument("--img-size", type=int, help="input size (default: recorded with the weights)")
    parser.add_argument("--batch-size", type=int, default=32, help="default 32")
    parser.add_argument("--device", help="cpu, cuda... (default: cuda when available)")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")


def run(args: argparse.Namespace) -> int:
    import torch

    from ..checkpoint import load_model
    from ..constants import RESEARCH_USE_NOTICE
    from ..engine import resolve_device
    from ..predict import expand_images, format_predictions, predict

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.top_k is not None and args.top_k < 1:
        sys.stderr.write(f"cervattn predict: --top-k {args.top_k} is not accepted; give 1 or more.\n")
        return 2
    try:
        files = expand_images(args.images)
    except FileNotFoundError as e:
        sys.stderr.write(f"cervattn predict: {e}\n")
        return 1
    loaded = load_model(args.model, img_size=args.img_size, device=resolve_device(args.device))
    preds = predict(loaded.model, files, batch_size=args.batch_size, device=args.device)
    if args.json:
        records = [p.to_dict(args.top_k) for p in preds]
        sys.stdout.write(json.dumps({"model": loaded.name, "notice": RESEARCH_USE_NOTICE, "predictions": records},
                                    indent=2) + "\n")
    else:
        sys.stdout.write(format_predictions(preds, args.top_k))
        sys.stderr.write(RESEARCH_USE_NOTICE + "\n")
    return 0
