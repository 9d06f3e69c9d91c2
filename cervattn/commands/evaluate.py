"""``cervattn evaluate MODEL --data ROOT``: Table II-style metrics with CIs, confusion matrix, JSON."""

from __future__ import annotations

import argparse
import json
import sys

HELP = "evaluate a model (name.tag, release folder or training run) on a SIPaKMeD folder"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="name with a pretrained tag, a release folder, or a training run folder/checkpoint")
    parser.add_argument("--data", required=True, help="SIPaKMeD root in the official layout")
    parser.add_argument("--split", choices=("train", "val", "test", "all"),
                        help="images to evaluate (default: test; all without a split file)")
    parser.add_argument("--kind", choices=("isolated", "multi"), default="isolated", help="default isolated")
    parser.add_argument("--split-file", default="shipped",
                        help="split CSV; 'shipped' (default) or 'none' to evaluate every image found")
    parser.add_argument("--json", metavar="OUT", help="write the metrics as JSON to OUT ('-' for stdout)")
    parser.add_argument("--out", metavar="DIR", help="write metrics.json, table.md, confusion_matrix.png, predictions.csv")
    parser.add_argument("--img-size", type=int, help="input size (default: recorded with the weights)")
    parser.add_argument("--batch-size", type=int, default=64, help="default 64")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers (default 0)")
    parser.add_argument("--device", help="cpu, cuda... (default: cuda when available)")
    parser.add_argument("--amp", action="store_true", help="mixed-precision inference")
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for 95%% CIs (default 1000)")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import torch

    from ..checkpoint import jsonable, write_json
    from ..constants import RESEARCH_USE_NOTICE
    from ..evaluate import evaluate_model

    if args.threads:
        torch.set_num_threads(args.threads)
    split_file = None if args.split_file.lower() == "none" else args.split_file
    split = args.split or ("test" if split_file is not None else "all")
    result = evaluate_model(args.model, args.data, split=split, kind=args.kind, split_file=split_file,
                            img_size=args.img_size, batch_size=args.batch_size, workers=args.workers,
                            device=args.device, amp=args.amp, n_boot=args.n_boot,
                            progress=args.progress and sys.stderr.isatty())
    meta = result.meta
    fl = result.field_level
    lines = [f"{meta['model']} ({meta['source']}) on {meta['data_root']}: kind={meta['kind']}, split={meta['split']}, "
             f"{result.report['n']} images, {result.n_missing} listed but absent"]
    if fl:
        lines.append(f"field-level accuracy: {fl['accuracy']:.4f} ({fl['n_correct']}/{fl['n_fields']} fields)")
    if args.json == "-":
        sys.stdout.write(json.dumps(jsonable(result.to_dict()), indent=2) + "\n")
    else:
        sys.stdout.write("\n".join(lines) + "\n\n" + result.markdown(meta["model"]))
        if args.json:
            write_json(args.json, result.to_dict())
    if args.out:
        files = result.save(args.out, meta["model"])
        sys.stderr.write(f"wrote {', '.join(str(p) for p in files.values())}\n")
    sys.stderr.write(RESEARCH_USE_NOTICE + "\n")
    return 0
