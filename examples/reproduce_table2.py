"""Reproduce Table II (isolated cells) of the seed paper with cervattn's honest protocol.

Trains the paper's four models on the train split of the grouped split, selects the best epoch on
val, evaluates on ``--split`` (val here; test when you have the full dataset) and prints a Table
II-style markdown table next to the paper's numbers. The paper's protocol differs: random
(leaky) split, ImageNet start for the DenseNets, random rotations at test time.

    python examples/reproduce_table2.py --data /path/to/SIPaKMeD --out runs/table2            # paper recipe
    python examples/reproduce_table2.py --data /path/to/SIPaKMeD --out runs/t2 --img-size 128 --epochs 30

Runs resume where they stopped (each model's run folder keeps last.pt). On a 2-core CPU the
paper's 50 epochs at 224 px take about a day per model (see docs/training.md); use a GPU.

Research use only, not for clinical diagnosis.
"""

import argparse
from pathlib import Path

from cervattn.evaluate import evaluate_model
from cervattn.metrics import markdown_table
from cervattn.train import TrainConfig, train

PAPER_MODELS = ("resnet50", "densenet121", "ran_resnet50", "rcan_densenet121")
PAPER_ACCURACY = {"resnet50": 95.11, "densenet121": 95.84, "ran_resnet50": 94.13, "rcan_densenet121": 96.33}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="SIPaKMeD root in the official layout")
    parser.add_argument("--out", required=True, help="folder for the four run folders and the table")
    parser.add_argument("--models", nargs="+", default=list(PAPER_MODELS))
    parser.add_argument("--split-file", default=None, help="split CSV (default: the shipped grouped split)")
    parser.add_argument("--split", default="val", help="split to report (test needs the full dataset)")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--img-size", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--limit-train", type=int, default=None, help="smoke runs only")
    parser.add_argument("--limit-val", type=int, default=None, help="smoke runs only")
    args = parser.parse_args()

    out = Path(args.out)
    reports = {}
    for name in args.models:
        run_dir = out / name
        config = TrainConfig(model=name, data=args.data, out=str(run_dir), epochs=args.epochs,
                             split_file=args.split_file,
                             img_size=args.img_size, batch_size=args.batch_size,
                             limit_train=args.limit_train, limit_val=args.limit_val, progress=False)
        train(config, resume=(run_dir / "last.pt").exists())
        result = evaluate_model(run_dir, args.data, split=args.split, img_size=args.img_size, n_boot=200,
                                split_file=args.split_file or "shipped")
        reports[name] = result.report
        paper = PAPER_ACCURACY.get(name)
        print(f"{name}: accuracy {100 * result.report['accuracy']:.2f}% on {args.split} "
              f"(paper, leaky split, test: {paper if paper is not None else '-'}%)")
    table = markdown_table(reports)
    (out / "table2.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
