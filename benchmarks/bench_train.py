"""Training throughput: cervattn's loop vs a bare PyTorch loop, and epoch-time estimates of the paper models.

Part 1 runs :func:`cervattn.engine.train_one_epoch` (with the per-image seeded augmentation, the
epoch sampler and the per-step LR schedule of :func:`cervattn.train.train`) and a bare loop
(``DataLoader(shuffle=True)``, zero_grad / forward / backward / step) on the same model, data,
transform, batch size and worker count, alternating A/B rounds in one process; it reports the
median images/s of each and their ratio (target >= 0.95).

Part 2 times a few training steps (forward, backward, Adam step, batch 16, random input) of each
paper model at several input sizes and extrapolates to one epoch of the 2,795 training cells
(175 steps), compute only; the per-image cost of the training augmentation is measured
separately (one thread, decoded-image cache) and reported as the data time of an epoch in one
process.

    python benchmarks/bench_train.py --quick            # the configuration in docs/training.md
    python benchmarks/bench_train.py --threads 2 --steps 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # fake_sipakmed, when the real data is absent

import cervattn  # noqa: E402
from cervattn.data import DecodedCache, SIPaKMeD, train_transform  # noqa: E402
from cervattn.engine import EpochSampler, SeededDataset, make_loader, train_one_epoch  # noqa: E402

PAPER_MODELS = ("resnet50", "densenet121", "ran_resnet50", "rcan_densenet121")
TRAIN_IMAGES = 2795


def _dataset(root: Path | None, img_size: int, n: int, model: torch.nn.Module):
    if root is None:
        from fake_sipakmed import make_fake_sipakmed

        root = make_fake_sipakmed(Path(tempfile.mkdtemp()) / "fake", fields_per_class=n // 10 + 1,
                                  cells_per_field=2, size=(200, 180))
        ds = SIPaKMeD(root, splits=None, transform=train_transform(model, img_size=img_size), cache=DecodedCache())
    else:
        ds = SIPaKMeD(root, split="train", transform=train_transform(model, img_size=img_size), cache=DecodedCache())
    ds.samples = ds.samples[:: max(1, len(ds) // n)][:n]
    ds.preload()
    return ds


def _bare(model, loader, opt, loss_fn) -> float:
    """The bare PyTorch loop: images/s of one pass over ``loader``."""
    t = time.perf_counter()
    n = 0
    for x, y in loader:
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
        n += len(y)
    return n / (time.perf_counter() - t)


def _ours(model, loader, sampler, opt, loss_fn, device, epoch: int) -> float:
    """cervattn's loop, with the per-step LR setting that train() does."""

    def set_lr(step: int) -> None:
        for group in opt.param_groups:
            group["lr"] = 1e-3

    sampler.set_epoch(epoch)
    stats = train_one_epoch(model, loader, opt, loss_fn, device, set_lr=set_lr, step=epoch * len(loader))
    return stats["images"] / stats["time"]


def bench_loop(args) -> list[str]:
    model = cervattn.create_model(args.loop_model, num_classes=5)
    ds = _dataset(args.data, args.loop_size, args.loop_images, model)
    loss_fn = torch.nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    device = torch.device("cpu")
    lines = []
    for workers in args.loop_workers:
        bare_loader = torch.utils.data.DataLoader(ds, batch_size=16, shuffle=True, num_workers=workers, drop_last=True,
                                                  persistent_workers=workers > 0)
        sampler = EpochSampler(len(ds), seed=0, shuffle=True, global_batch=16, drop_last=True)
        ours_loader = make_loader(SeededDataset(ds, 0), sampler, 16, workers, device)

        model.train()
        run_bare = (model, bare_loader, opt, loss_fn)
        run_ours = (model, ours_loader, sampler, opt, loss_fn, device)
        _bare(*run_bare), _ours(*run_ours, 0)  # warm-up (workers start, allocator)
        a, b = [], []
        for r in range(args.rounds):
            a.append(_bare(*run_bare))
            b.append(_ours(*run_ours, r + 1))
        ma, mb = statistics.median(a), statistics.median(b)
        lines.append(f"| {args.loop_model} | {args.loop_size} | {workers} | {ma:.1f} | {mb:.1f} | {mb / ma:.3f} |")
        print(lines[-1], flush=True)
    return lines


def bench_models(args) -> list[str]:
    from timm.data import resolve_data_config  # noqa: F401  (import cost outside the timings)

    lines = []
    data_ms = {}
    probe = cervattn.create_model("test_rcan_densenet")
    ds = _dataset(args.data, 224, 48, probe)
    for size in args.sizes:
        tf = train_transform(probe, img_size=size)
        images = [ds.load_image(i) for i in range(len(ds))]
        t = time.perf_counter()
        for im in images:
            tf(im)
        data_ms[size] = (time.perf_counter() - t) / len(images) * 1e3
    for name in args.models:
        model = cervattn.create_model(name, num_classes=5).train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        cells = []
        for size in args.sizes:
            x, y = torch.randn(16, 3, size, size), torch.randint(0, 5, (16,))
            times = []
            for _ in range(args.steps + 1):
                t = time.perf_counter()
                opt.zero_grad()
                torch.nn.functional.cross_entropy(model(x), y).backward()
                opt.step()
                times.append(time.perf_counter() - t)
            step = statistics.median(times[1:])  # first step is a warm-up
            cells.append(f"{step:.2f} s / {step * TRAIN_IMAGES / 16 / 60:.0f} min")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    data_row = " | ".join(f"{data_ms[s]:.1f} ms / {data_ms[s] * TRAIN_IMAGES / 6e4:.1f} min" for s in args.sizes)
    lines.append(f"| (augmentation, per image / per epoch) | {data_row} |")
    print(lines[-1], flush=True)
    return lines


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_data = os.environ.get("CERVATTN_SIPAKMED", str(REPO.parent / "shared" / "sipakmed"))
    p.add_argument("--data", type=Path, default=Path(default_data) if Path(default_data).is_dir() else None)
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy 2-core machine)")
    p.add_argument("--quick", action="store_true", help="short configuration (about 10 minutes on 2 cores)")
    p.add_argument("--loop-model", default="test_rcan_densenet")
    p.add_argument("--loop-size", type=int, default=64)
    p.add_argument("--loop-images", type=int, default=512)
    p.add_argument("--loop-workers", type=int, nargs="+", default=[0, 1])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--models", nargs="+", default=list(PAPER_MODELS))
    p.add_argument("--sizes", type=int, nargs="+", default=[96, 128, 160, 224])
    p.add_argument("--steps", type=int, default=3, help="timed steps per model and size (after one warm-up)")
    p.add_argument("--skip-loop", action="store_true")
    p.add_argument("--skip-models", action="store_true")
    args = p.parse_args()
    if args.quick:
        args.rounds, args.steps, args.loop_images = 3, 2, 256
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, {args.threads} thread(s), data: {args.data or 'fake'}")
    if not args.skip_loop:
        print("\n| model | px | workers | bare loop img/s | cervattn loop img/s | ratio |\n|---|---|---|---|---|---|")
        bench_loop(args)
    if not args.skip_models:
        print(f"\nOne training step (batch 16) / extrapolated epoch of {TRAIN_IMAGES} images, compute only:\n")
        print("| model | " + " | ".join(f"{s} px" for s in args.sizes) + " |\n|---|" + "---|" * len(args.sizes))
        bench_models(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
