"""Deletion / insertion AUC of IG vs saliency vs SmoothGrad vs Grad-CAM vs a random order.

For each image and method: explain the predicted class, then remove (deletion) or reveal
(insertion) pixels most-attributed first and record the softmax probability (see
cervattn.faithfulness for the replacement value, default a blurred copy of the image). Lower
deletion AUC and higher insertion AUC are better; ``random`` is the same curve for random pixel
orders. Also reports the share of positive attribution on cells (Otsu background threshold).

Images: ``--images`` files/folders, else the ``val`` isolated cells of the SIPaKMeD copy in
$CERVATTN_SIPAKMED or ../shared/sipakmed (stratified over the classes). Random weights are fine
for a smoke run; meaningful numbers need trained weights (``--pretrained`` or ``--checkpoint``).

    python benchmarks/bench_faithfulness.py --model rcan_densenet121 --pretrained --n-images 50
    python benchmarks/bench_faithfulness.py --model test_rcan_densenet --n-images 3 --steps 8 --ig-steps 8
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from pathlib import Path

import numpy as np

METHODS = ("integrated_gradients", "saliency", "smoothgrad", "gradcam")


def _sipakmed_images(n: int, split: str) -> list[Path]:
    root = Path(os.environ.get("CERVATTN_SIPAKMED", Path(__file__).resolve().parents[2] / "shared" / "sipakmed"))
    if not (root / "splits.csv").is_file():
        raise SystemExit(f"no --images given and no SIPaKMeD copy at {root} (set CERVATTN_SIPAKMED)")
    per_class: dict[str, list[Path]] = {}
    with open(root / "splits.csv") as fh:
        for row in csv.DictReader(fh):
            if row["kind"] == "isolated" and row["split"] == split and (root / row["path"]).is_file():
                per_class.setdefault(row["label"], []).append(root / row["path"])
    if not per_class:
        raise SystemExit(f"no isolated {split!r} images found under {root}")
    out, i = [], 0
    while len(out) < n and any(i < len(v) for v in per_class.values()):
        out += [v[i] for _, v in sorted(per_class.items()) if i < len(v)]
        i += 1
    return out[:n]


def _model(args):
    import timm
    import torch

    import cervattn

    torch.manual_seed(0)
    if cervattn.is_cervattn_model(args.model):
        kw = {} if args.pretrained else {"num_classes": 5}
        model = cervattn.create_model(args.model, pretrained=args.pretrained, **kw)
    else:
        model = timm.create_model(args.model, pretrained=args.pretrained, num_classes=5)
    if args.checkpoint:
        from safetensors.torch import load_file

        model.load_state_dict(load_file(args.checkpoint))
    return model.eval()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="rcan_densenet121")
    p.add_argument("--pretrained", action="store_true")
    p.add_argument("--checkpoint", default=None, help="a .safetensors state dict")
    p.add_argument("--images", nargs="*", default=None, help="image files or folders")
    p.add_argument("--n-images", type=int, default=20)
    p.add_argument("--split", default="val")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--steps", type=int, default=16, help="deletion / insertion steps")
    p.add_argument("--ig-steps", type=int, default=50)
    p.add_argument("--replacement", default="blurred", choices=["blurred", "black", "white", "mean"])
    p.add_argument("--random-orders", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)

    import torch

    from cervattn import faithfulness as fa
    from cervattn.explanations import expand_image_paths, explain

    if args.threads:
        torch.set_num_threads(args.threads)
    paths = expand_image_paths(args.images)[: args.n_images] if args.images else _sipakmed_images(
        args.n_images, args.split)
    model = _model(args)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    print(f"model={args.model} pretrained={args.pretrained or bool(args.checkpoint)} images={len(paths)} "
          f"steps={args.steps} replacement={args.replacement}", flush=True)
    rows: dict[str, dict[str, list]] = {m: {"del": [], "ins": [], "share": []} for m in [*methods, "random"]}
    t0 = time.perf_counter()
    for start in range(0, len(paths), args.batch_size):
        batch = [str(p) for p in paths[start : start + args.batch_size]]
        for m in methods:
            e = explain(model, batch, method=m, n_steps=args.ig_steps)
            kw = {"n_steps": args.steps, "replacement": args.replacement, "batch_size": 17}
            with_random = m == methods[0]
            d = fa.deletion_curve(model, e, random_orders=args.random_orders if with_random else 0, **kw)
            i = fa.insertion_curve(model, e, random_orders=args.random_orders if with_random else 0, **kw)
            rows[m]["del"] += d.auc.tolist()
            rows[m]["ins"] += i.auc.tolist()
            rows[m]["share"] += fa.cell_attribution_share(e).share.tolist()
            if with_random:
                rows["random"]["del"] += d.random_auc.tolist()
                rows["random"]["ins"] += i.random_auc.tolist()
    elapsed = time.perf_counter() - t0

    def ms(v):
        v = np.asarray(v, dtype=float)
        v = v[np.isfinite(v)]
        return f"{v.mean():.3f} ± {v.std(ddof=1) if v.size > 1 else 0:.3f}" if v.size else "-"

    rdel, rins = np.asarray(rows["random"]["del"]), np.asarray(rows["random"]["ins"])
    print("\n| method | deletion AUC (lower better) | insertion AUC (higher better) | "
          "del < random | ins > random | attribution on cells |")
    print("|---|---|---|---|---|---|")
    for m, r in rows.items():
        if m == "random":
            print(f"| random order | {ms(r['del'])} | {ms(r['ins'])} | - | - | - |")
            continue
        dl, ins = np.asarray(r["del"]), np.asarray(r["ins"])
        print(f"| {m} | {ms(dl)} | {ms(ins)} | {np.mean(dl < rdel):.0%} | {np.mean(ins > rins):.0%} | "
              f"{ms(r['share'])} |")
    print(f"\n{len(paths)} images, {elapsed:.1f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"config": vars(args), "paths": [str(p) for p in paths], "results": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
