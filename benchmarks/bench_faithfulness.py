"""Faithfulness of IG vs saliency vs SmoothGrad vs Grad-CAM vs random, attention model vs backbone.

Three measurements per model (``cervattn.faithfulness`` has the definitions):

1. **Cells** (``--n-images`` isolated val cells, stratified over the classes, or ``--images``):
   deletion and insertion AUC of the predicted class's softmax probability, pixels
   most-attributed first (removed pixels take a blurred copy of the image), against random
   pixel orders. Lower deletion and higher insertion AUC are better.
2. **Randomisation** (``--n-randomization`` of those cells): Spearman rank correlation of the
   absolute maps of the trained model and of a fully re-initialised copy; near 0 = the map
   depends on the weights (it passes the sanity check), near 1 = it only reflects the image.
3. **Fields** (``--n-fields`` multi-cell field images of the SIPaKMeD copy, resized to
   ``--field-size`` px on the long side; target = the field's class): share of the positive
   attribution on cells (Otsu background), its enrichment over a uniform map, and the number of
   cell regions (touching cells form one) that hold 80 % of it: does the map point at few cells?

Models are given as ``arch.tag`` release names; with several, the first is compared with each
other one, paired per image (attention model first, then its backbone):

    python benchmarks/bench_faithfulness.py --pretrained \\
        --models rcan_densenet121.sipakmed_cells_64 densenet121.sipakmed_cells_64 \\
        --n-images 50 --n-fields 61 --markdown faithfulness.md
    python benchmarks/bench_faithfulness.py --models test_rcan_densenet test_ran_densenet \\
        --n-images 2 --n-fields 1 --steps 4 --ig-steps 4   # smoke run on random weights

Images come from $CERVATTN_SIPAKMED or ../shared/sipakmed. Random weights are fine for a smoke
run; meaningful numbers need trained weights (``--pretrained`` or ``--checkpoint``).
Research use only, not for clinical diagnosis.
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
FIELD_METHODS = ("integrated_gradients", "gradcam")


def _root() -> Path:
    return Path(os.environ.get("CERVATTN_SIPAKMED", Path(__file__).resolve().parents[2] / "shared" / "sipakmed"))


def _rows(kind: str, split: str | None) -> dict[str, list[tuple[Path, str]]]:
    """``{label: [(path, label), ...]}`` of the files of ``kind`` present in the SIPaKMeD copy."""
    root = _root()
    if not (root / "splits.csv").is_file():
        raise SystemExit(f"no SIPaKMeD copy at {root} (set CERVATTN_SIPAKMED, or pass --images / --n-fields 0)")
    per_class: dict[str, list[tuple[Path, str]]] = {}
    with open(root / "splits.csv") as fh:
        for row in csv.DictReader(fh):
            if row["kind"] == kind and (split is None or row["split"] == split) and (root / row["path"]).is_file():
                per_class.setdefault(row["label"], []).append((root / row["path"], row["label"]))
    return per_class


def _stratified(per_class: dict[str, list], n: int) -> list:
    """Round-robin over the classes (sorted), in file order, until ``n`` items."""
    out, i = [], 0
    while len(out) < n and any(i < len(v) for v in per_class.values()):
        out += [v[i] for _, v in sorted(per_class.items()) if i < len(v)]
        i += 1
    return out[:n]


def _model(name: str, args):
    import torch

    import cervattn

    torch.manual_seed(0)
    kw = {} if args.pretrained else {"num_classes": 5}
    model = cervattn.create_model(name, pretrained=args.pretrained, **kw)
    if args.checkpoint:
        from safetensors.torch import load_file

        model.load_state_dict(load_file(args.checkpoint))
    return model.eval()


def _field_tensor(model, path: Path, size: int):
    """The field image resized to ``size`` px on its long side (aspect kept), normalised."""
    import torch
    from PIL import Image
    from timm.data import resolve_data_config

    cfg = resolve_data_config(model=model)
    with Image.open(path) as im:
        im = im.convert("RGB")
        scale = size / max(im.size)
        im = im.resize((max(32, round(im.width * scale)), max(32, round(im.height * scale))), Image.BICUBIC)
        x = torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.0).permute(2, 0, 1)
    mean, std = torch.tensor(cfg["mean"]).view(3, 1, 1), torch.tensor(cfg["std"]).view(3, 1, 1)
    return ((x - mean) / std).unsqueeze(0)


def _method_kwargs(spec: str) -> dict:
    """``'integrated_gradients:white'`` -> explain() keywords (method and IG baseline)."""
    method, _, baseline = spec.partition(":")
    return {"method": method, **({"baselines": baseline} if baseline else {})}


def run_model(name: str, args, cells: list[Path], fields: list[tuple[Path, str]], shown: dict) -> dict:
    """Run the three measurements for one model; the field explanations of the first
    ``--n-figures`` fields go into ``shown[(field, method)][name]`` for the comparison figures."""
    from cervattn import faithfulness as fa
    from cervattn.explanations import explain

    model = _model(name, args)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    field_methods = [m.strip() for m in args.field_methods.split(",") if m.strip()]
    res: dict = {"cells": {m: {"del": [], "ins": []} for m in [*methods, "random"]},
                 "randomization": {}, "fields": {m: {} for m in field_methods}, "field_paths": []}
    kw = {"n_steps": args.steps, "replacement": args.replacement, "batch_size": 17}
    t0 = time.perf_counter()
    for start in range(0, len(cells), args.batch_size):
        batch = [str(p) for p in cells[start : start + args.batch_size]]
        for m in methods:
            e = explain(model, batch, n_steps=args.ig_steps, **_method_kwargs(m))
            first = m == methods[0]
            orders = args.random_orders if first else 0
            d = fa.deletion_curve(model, e, random_orders=orders, **kw)
            i = fa.insertion_curve(model, e, random_orders=orders, **kw)
            res["cells"][m]["del"] += d.auc.tolist()
            res["cells"][m]["ins"] += i.auc.tolist()
            if first:
                res["cells"]["random"]["del"] += d.random_auc.tolist()
                res["cells"]["random"]["ins"] += i.random_auc.tolist()
    t1 = time.perf_counter()
    if args.n_randomization:
        sample = [str(p) for p in cells[: args.n_randomization]]
        for m in methods:
            r = fa.randomization_check(model, sample, mode="full", n_steps=args.ig_steps, **_method_kwargs(m))
            res["randomization"][m] = r.spearman_abs[-1].tolist()
    t2 = time.perf_counter()
    for j, (path, label) in enumerate(fields):
        x = _field_tensor(model, path, args.field_size)
        res["field_paths"].append(str(path))
        for m in field_methods:
            e = explain(model, x, target=label, n_steps=args.field_ig_steps, **_method_kwargs(m))
            share = fa.cell_attribution_share(e)
            conc = fa.cell_concentration(e, mass=args.mass)
            if j < args.n_figures:
                caption = f"{conc.regions_for_mass[0]:.0f} of {conc.n_regions[0]} regions hold {args.mass:.0%}"
                shown.setdefault((j, m), {})[name] = (e, caption)
            row = res["fields"][m]
            for key, val in (("share", share.share), ("enrichment", share.enrichment),
                             ("regions_for_mass", conc.regions_for_mass), ("n_regions", conc.n_regions),
                             ("fraction_for_mass", conc.fraction_for_mass), ("top_share", conc.top_region_share),
                             ("correct", (e.probabilities.argmax(1) == e.target).astype(float))):
                row.setdefault(key, []).extend(np.asarray(val, dtype=float).tolist())
    res["seconds"] = {"cells": t1 - t0, "randomization": t2 - t1, "fields": time.perf_counter() - t2}
    print(f"{name}: cells {t1 - t0:.0f} s, randomisation {t2 - t1:.0f} s, fields {res['seconds']['fields']:.0f} s",
          flush=True)
    return res


def _ms(v, digits: int = 3) -> str:
    v = np.asarray(v, dtype=float)
    v = v[np.isfinite(v)]
    if not v.size:
        return "-"
    sd = v.std(ddof=1) if v.size > 1 else 0.0
    return f"{v.mean():.{digits}f} ± {sd:.{digits}f}"


def _paired(a, b, seed: int = 0) -> str:
    """Mean of a - b with a 95 % bootstrap CI, and how often a < b / a > b."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if not a.size:
        return "-"
    d = a - b
    rng = np.random.default_rng(seed)
    boots = d[rng.integers(0, d.size, (2000, d.size))].mean(1)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return f"{d.mean():+.3f} [{lo:+.3f}, {hi:+.3f}] (lower in {np.mean(d < 0):.0%}, higher in {np.mean(d > 0):.0%})"


def tables(results: dict[str, dict], args) -> str:
    out = []
    names = list(results)
    n_cells = len(next(iter(results.values()))["cells"]["random"]["del"])
    out.append(f"**Cells** ({n_cells} isolated {args.split} cells; {args.steps} steps, replacement "
               f"{args.replacement}, {args.random_orders} random orders; randomisation on "
               f"{args.n_randomization} cells)\n")
    out.append("| model | method | deletion AUC (lower better) | insertion AUC (higher better) | "
               "del < random | ins > random | Spearman after randomisation |")
    out.append("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        rdel, rins = np.asarray(r["cells"]["random"]["del"]), np.asarray(r["cells"]["random"]["ins"])
        for m, v in r["cells"].items():
            if m == "random":
                out.append(f"| {name} | random order | {_ms(v['del'])} | {_ms(v['ins'])} | - | - | - |")
                continue
            dl, ins = np.asarray(v["del"]), np.asarray(v["ins"])
            rho = _ms(r["randomization"][m], 2) if m in r["randomization"] else "-"
            out.append(f"| {name} | {m} | {_ms(dl)} | {_ms(ins)} | {np.mean(dl < rdel):.0%} | "
                       f"{np.mean(ins > rins):.0%} | {rho} |")
    n_fields = len(next(iter(results.values()))["field_paths"])
    if n_fields:
        out.append(f"\n**Fields** ({n_fields} multi-cell field images at {args.field_size} px on the long "
                   f"side, target = the field's class; regions = connected cell regions)\n")
        out.append(f"| model | method | attribution on cells | enrichment | regions holding {args.mass:.0%} | "
                   f"as share of regions | top region's share | regions | field class predicted |")
        out.append("|---|---|---|---|---|---|---|---|---|")
        for name, r in results.items():
            for m, v in r["fields"].items():
                out.append(f"| {name} | {m} | {_ms(v['share'], 2)} | {_ms(v['enrichment'], 2)} | "
                           f"{_ms(v['regions_for_mass'], 1)} | {_ms(v['fraction_for_mass'], 2)} | "
                           f"{_ms(v['top_share'], 2)} | {_ms(v['n_regions'], 1)} | {np.mean(v['correct']):.0%} |")
    if len(names) > 1:
        out.append(f"\n**Paired: {names[0]} minus the other model** (mean difference [95 % bootstrap CI], "
                   "and how often it is lower / higher)\n")
        out.append("| vs | quantity | method | difference |")
        out.append("|---|---|---|---|")
        a = results[names[0]]
        for other in names[1:]:
            b = results[other]
            for m in a["cells"]:
                if m in b["cells"] and m != "random":
                    out.append(f"| {other} | cells: deletion AUC | {m} | {_paired(a['cells'][m]['del'], b['cells'][m]['del'])} |")
                    out.append(f"| {other} | cells: insertion AUC | {m} | {_paired(a['cells'][m]['ins'], b['cells'][m]['ins'])} |")
            for m in a["fields"]:
                if a["fields"][m] and b["fields"].get(m):
                    out.append(f"| {other} | fields: regions holding {args.mass:.0%} | {m} | "
                               f"{_paired(a['fields'][m]['regions_for_mass'], b['fields'][m]['regions_for_mass'])} |")
                    out.append(f"| {other} | fields: attribution on cells | {m} | "
                               f"{_paired(a['fields'][m]['share'], b['fields'][m]['share'])} |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["rcan_densenet121"],
                   help="model names (arch or arch.tag); the first is compared with each other one")
    p.add_argument("--pretrained", action="store_true", help="load the released weights of each name")
    p.add_argument("--checkpoint", default=None, help="a .safetensors state dict (one model only)")
    p.add_argument("--images", nargs="*", default=None, help="cell image files or folders instead of val cells")
    p.add_argument("--n-images", type=int, default=20)
    p.add_argument("--split", default="val", help="split of the cells and fields (never test)")
    p.add_argument("--methods", default=",".join(METHODS),
                   help="comma-separated; 'integrated_gradients:white' picks an IG baseline (black by default)")
    p.add_argument("--steps", type=int, default=16, help="deletion / insertion steps")
    p.add_argument("--ig-steps", type=int, default=50)
    p.add_argument("--replacement", default="blurred", choices=["blurred", "black", "white", "mean"])
    p.add_argument("--random-orders", type=int, default=3)
    p.add_argument("--n-randomization", type=int, default=8, help="cells for the randomisation check (0: skip)")
    p.add_argument("--n-fields", type=int, default=0, help="multi-cell field images (any split; 0: skip)")
    p.add_argument("--field-size", type=int, default=384, help="long side of the fields, px")
    p.add_argument("--field-methods", default=",".join(FIELD_METHODS))
    p.add_argument("--field-ig-steps", type=int, default=16)
    p.add_argument("--mass", type=float, default=0.8, help="attribution share the counted regions hold")
    p.add_argument("--figures", default=None, help="folder for side-by-side figures of the first fields")
    p.add_argument("--n-figures", type=int, default=0, help="fields drawn into --figures")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--json", default=None, help="write all per-image numbers here")
    p.add_argument("--markdown", default=None, help="write the tables here")
    args = p.parse_args(argv)
    if args.checkpoint and len(args.models) != 1:
        p.error("--checkpoint loads one state dict: pass exactly one --models name")
    if args.split == "test":
        p.error("--split test: the test cells are held out; tune and inspect on train or val only")

    import torch

    from cervattn.predict import expand_images

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.images:
        cells = expand_images(args.images)[: args.n_images]
    else:
        cells = [path for path, _ in _stratified(_rows("isolated", args.split), args.n_images)]
    # Fields of every split: the models were trained on cells, never on fields.
    fields = _stratified(_rows("multi", None), args.n_fields) if args.n_fields else []
    print(f"models={args.models} pretrained={args.pretrained or bool(args.checkpoint)} cells={len(cells)} "
          f"fields={len(fields)} threads={torch.get_num_threads()}", flush=True)
    shown: dict = {}
    results = {name: run_model(name, args, cells, fields, shown) for name in args.models}
    if args.figures:
        from cervattn.viz import plot_comparison

        for (j, m), per_model in shown.items():
            path = Path(args.figures) / f"field_{j}_{Path(fields[j][0]).stem}_{m}.png"
            plot_comparison({k: e for k, (e, _) in per_model.items()},
                            captions={k: c for k, (_, c) in per_model.items()}, path=path,
                            title=f"{fields[j][1]} field {Path(fields[j][0]).stem}, {m}")
            print(f"wrote {path}")
    md = tables(results, args)
    print("\n" + md)
    if args.markdown:
        Path(args.markdown).write_text(md)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"config": vars(args), "cells": [str(c) for c in cells], "results": results}, fh, indent=2)


if __name__ == "__main__":
    main()
