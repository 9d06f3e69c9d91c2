"""Explain every image of a folder: one Fig. 2-style figure per image plus predictions.json/.csv.

    python examples/explain_folder.py examples/images --model rcan_densenet121 --out explanations

``--model`` is a released tag, a release folder or a training run folder. For the paper's own
procedure (softmax, 10 uniform-noise baselines, 50 left-Riemann steps) pass ``--paper``.

Research use only, not for clinical diagnosis.
"""

import argparse

import cervattn
from cervattn.checkpoint import load_model
from cervattn.explanations import PAPER_IG


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", help="a folder of images (searched recursively) or one image")
    parser.add_argument("--model", required=True, help="released tag, release folder or training run")
    parser.add_argument("--out", default="explanations")
    parser.add_argument("--n-steps", type=int, default=50)
    parser.add_argument("--paper", action="store_true", help="the seed paper's IG procedure (slower)")
    args = parser.parse_args()

    model = load_model(args.model).model  # eval mode, preprocessing recorded in its pretrained_cfg
    options = dict(PAPER_IG) if args.paper else {"n_steps": args.n_steps, "baselines": "white"}
    records = cervattn.explain_files(model, [args.folder], args.out, **options)
    for r in records:
        print(f"{r['path']}: {r['predicted']} ({max(r['probabilities'].values()):.2f}) -> {r['figure']}")


if __name__ == "__main__":
    main()
