"""``cervattn explain IMAGE_OR_FOLDER... --model NAME --out DIR``: attribution figures and predictions."""

from __future__ import annotations

import argparse
import sys

HELP = "explain predictions: Fig. 2-style attribution figures plus predictions.json/.csv per folder"

METHODS = ("integrated_gradients", "saliency", "smoothgrad", "gradcam", "soft_mask", "channel_attention")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", metavar="IMAGE_OR_FOLDER", help="image files or folders (searched recursively)")
    parser.add_argument("--model", required=True, help="name with a pretrained tag, a release folder, or a training run")
    parser.add_argument("--out", required=True, help="output folder for the figures and predictions")
    parser.add_argument("--method", default="integrated_gradients", choices=METHODS, help="default integrated_gradients")
    parser.add_argument("--target", help="class to explain: index or label name (default: the predicted class)")
    parser.add_argument("--n-steps", type=int, default=50, help="integration steps (default 50)")
    parser.add_argument("--baselines", default="white",
                        help="integrated gradients baseline: white (default: the empty bright slide), black, "
                             "blurred, mean or noise")
    parser.add_argument("--batch-size", type=int, default=8, help="images per call (default 8)")
    parser.add_argument("--format", default="png", choices=("png", "pdf", "svg"), help="figure format (default png)")
    parser.add_argument("--save-arrays", action="store_true", help="also save each explanation as .npz")
    parser.add_argument("--img-size", type=int, help="input size (default: recorded with the weights)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")


def run(args: argparse.Namespace) -> int:
    import torch

    from ..checkpoint import load_model
    from ..constants import RESEARCH_USE_NOTICE
    from ..explanations import explain_files

    if args.threads:
        torch.set_num_threads(args.threads)
    target = int(args.target) if args.target is not None and args.target.isdigit() else args.target
    kwargs = {"n_steps": args.n_steps, "baselines": args.baselines} if args.method == "integrated_gradients" else {}
    loaded = load_model(args.model, img_size=args.img_size)
    try:
        records = explain_files(loaded.model.eval(), args.images, args.out, method=args.method, target=target,
                                batch_size=args.batch_size, progress=not args.no_progress,
                                figure_format=args.format, save_arrays=args.save_arrays, **kwargs)
    except (FileNotFoundError, ValueError) as e:
        sys.stderr.write(f"cervattn explain: {e}\n")
        return 1
    for record in records:
        sys.stdout.write(f"{record['path']}: {record['predicted']} -> {record['figure']}\n")
    sys.stderr.write(f"Wrote {len(records)} figure(s) and predictions.json/.csv to {args.out}. {RESEARCH_USE_NOTICE}\n")
    return 0
