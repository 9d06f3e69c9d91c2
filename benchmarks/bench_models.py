"""Cost of the attention variants against their timm backbones, measured in the same run.

For each pair (cervattn model, timm backbone): parameters, GMACs, CPU inference throughput
(images/s, eval mode, no_grad) and peak resident memory at batch 16, 224 px by default. Timings
are interleaved (model, backbone, model, backbone, ...) and the median is reported, so load from
other processes on a shared machine hits both sides alike; the overhead column is the ratio of the
medians. Peak memory is measured in a fresh subprocess per model (``VmHWM``).

    python benchmarks/bench_models.py                      # the paper's models
    python benchmarks/bench_models.py --all --batch 4      # every variant, smaller batch
    python benchmarks/bench_models.py --markdown > table.md

Research use only, not for clinical diagnosis.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import torch

import cervattn
from cervattn.profiling import model_cost

PAPER_PAIRS = [
    ("rcan_densenet121", "densenet121"),
    ("rcab_densenet121", "densenet121"),
    ("ran_densenet121", "densenet121"),
    ("ran_resnet50", "resnet50"),
    ("rcan_resnet50", "resnet50"),
    ("rcab_resnet50", "resnet50"),
    ("ran_attention56", "resnet50"),
    ("ran_attention92", "resnet50"),
]


def backbone_of(name: str) -> str:
    """The timm backbone of a cervattn architecture (Attention-56/92 are compared with resnet50)."""
    if name.startswith("ran_attention"):
        return "resnet50"
    return name.split("_", 1)[1]


def _build(name: str) -> torch.nn.Module:
    return cervattn.create_model(name, num_classes=5).eval()


def _time_once(model: torch.nn.Module, x: torch.Tensor) -> float:
    start = time.perf_counter()
    with torch.no_grad():
        model(x)
    return time.perf_counter() - start


def peak_memory_mb(name: str, batch: int, img_size: int) -> float:
    """Peak RSS of a fresh process that builds ``name`` and runs one batch (MB).

    Read from ``VmHWM`` in /proc: unlike ``ru_maxrss`` it is not inherited from the parent
    process across fork and exec.
    """
    code = (
        "import torch, cervattn\n"
        f"m = cervattn.create_model({name!r}, num_classes=5).eval()\n"
        f"x = torch.randn({batch}, 3, {img_size}, {img_size})\n"
        "with torch.no_grad(): m(x)\n"
        "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def measure(pairs, batch: int, img_size: int, repeats: int, memory: bool) -> list[dict]:
    rows = []
    x = torch.randn(batch, 3, img_size, img_size)
    for name, base in pairs:
        models = {name: _build(name), base: _build(base)}
        for model in models.values():  # warm-up
            _time_once(model, x)
        times: dict[str, list[float]] = {name: [], base: []}
        for _ in range(repeats):
            for key, model in models.items():
                times[key].append(_time_once(model, x))
        row = {"model": name, "backbone": base, "batch": batch, "img_size": img_size}
        for key, label in ((name, "model"), (base, "backbone")):
            params, gmacs = model_cost(key, img_size=img_size, num_classes=5)
            median = statistics.median(times[key])
            row[f"{label}_params_m"] = params / 1e6
            row[f"{label}_gmacs"] = gmacs
            row[f"{label}_img_s"] = batch / median
            if memory:
                row[f"{label}_peak_mb"] = peak_memory_mb(key, batch, img_size)
        row["latency_ratio"] = row["backbone_img_s"] / row["model_img_s"]
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)  # progress, one row at a time
    return rows


def to_markdown(rows: list[dict]) -> str:
    memory = "model_peak_mb" in rows[0]
    head = ["model", "params (M)", "GMACs", "img/s", "backbone", "backbone img/s", "latency vs backbone"]
    if memory:
        head += ["peak MB", "backbone peak MB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [
            f"`{r['model']}`", f"{r['model_params_m']:.2f}", f"{r['model_gmacs']:.2f}", f"{r['model_img_s']:.1f}",
            f"`{r['backbone']}`", f"{r['backbone_img_s']:.1f}", f"{r['latency_ratio']:.3f}x",
        ]
        if memory:
            cells += [f"{r['model_peak_mb']:.0f}", f"{r['backbone_peak_mb']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--all", action="store_true", help="every registered variant, not only the paper's")
    parser.add_argument("--models", nargs="*", help="explicit cervattn model names")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args()
    if args.models:
        pairs = [(m, backbone_of(m)) for m in args.models]
    elif args.all:
        pairs = [(m, backbone_of(m)) for m in cervattn.list_models()]
    else:
        pairs = PAPER_PAIRS
    rows = measure(pairs, args.batch, args.img_size, args.repeats, memory=not args.no_memory)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, "
          f"{args.img_size} px, median of {args.repeats} interleaved runs")
    print(to_markdown(rows))


if __name__ == "__main__":
    main()
