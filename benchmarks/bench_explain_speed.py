"""Speed and peak memory of integrated gradients on CPU: cervattn.explain vs the compute floor.

Each method runs in a fresh subprocess, so its peak resident memory (``ru_maxrss``) is its own:

* ``floor``: the same forward+backward passes as one batched loop, nothing else (frozen
  parameters, input gradient only, chunks of the same size as explain's default);
* ``explain``: ``cervattn.explain(model, x, n_steps=...)`` with its defaults (including the
  prediction pass and the convergence delta);
* ``captum``: captum's defaults, ``IntegratedGradients(model).attribute(x, baselines, target,
  n_steps=..., internal_batch_size=None)``, parameters left trainable as a user would have them;
* ``captum_chunked``: the same with ``internal_batch_size`` = explain's chunk (isolates the
  effect of freezing the parameters);
* ``paper``: the seed paper's procedure: ``trials`` uniform-noise baselines x (steps + 1)
  one-image passes, gradient of the softmax probability via ``.backward()`` (which also computes
  every weight gradient), averaged. With ``--paper-trials`` below 10 the time is also shown
  extrapolated to 10 trials (labelled).

Ratios are against the floor measured in the same run. Wall time on a shared machine is noisy:
CPU time (user + system of the child) is reported too, and ``--repeats N`` runs every method N
times, interleaved, keeping the fastest time and the largest memory.

    python benchmarks/bench_explain_speed.py                       # densenet121, 224 px, 50 steps
    python benchmarks/bench_explain_speed.py --quick               # 128 px, 20 steps, 1 paper trial
    python benchmarks/bench_explain_speed.py --model rcan_densenet121 --methods floor,explain
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

METHODS = ("floor", "explain", "captum", "captum_chunked", "paper")


def _load_model(name: str):
    import timm
    import torch

    torch.manual_seed(0)
    try:
        import cervattn

        if cervattn.is_cervattn_model(name):
            return cervattn.create_model(name, num_classes=5)
    except ImportError:
        pass
    return timm.create_model(name, num_classes=5)


def _child(args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    model = _load_model(args.model).eval()
    cfg = model.pretrained_cfg
    mean = torch.tensor(cfg["mean"]).view(1, 3, 1, 1)
    std = torch.tensor(cfg["std"]).view(1, 3, 1, 1)
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(1, 3, args.size, args.size, generator=g) - mean) / std
    black = (0 - mean) / std
    target = 0
    from cervattn.attribution_methods import auto_internal_batch_size

    chunk = args.chunk or auto_internal_batch_size(args.size, args.size, torch.device("cpu"))

    # Same warm-up for every method: one forward+backward of one image.
    xw = x.clone().requires_grad_()
    torch.autograd.grad(model(xw)[:, target].sum(), xw)
    base_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    t0, c0 = time.perf_counter(), time.process_time()
    passes = args.steps
    if args.method == "floor":
        from captum.attr._utils.approximation_methods import approximation_parameters

        for p in model.parameters():
            p.requires_grad_(False)
        step_sizes, alphas = (f(args.steps) for f in approximation_parameters("gausslegendre"))
        alphas = torch.tensor(alphas).view(-1, 1, 1, 1)
        total = torch.zeros_like(x)
        for s in range(0, args.steps, chunk):
            xs = (black + alphas[s : s + chunk] * (x - black)).requires_grad_()
            (grad,) = torch.autograd.grad(model(xs)[:, target].sum(), xs)
            total += grad.sum(0, keepdim=True)
    elif args.method == "explain":
        from cervattn.explanations import explain

        explain(model, x, n_steps=args.steps, target=target)
    elif args.method in ("captum", "captum_chunked"):
        from captum.attr import IntegratedGradients

        ibs = None if args.method == "captum" else chunk
        IntegratedGradients(model).attribute(
            x, baselines=black, target=target, n_steps=args.steps, internal_batch_size=ibs
        )
    elif args.method == "paper":
        import torch.nn.functional as F

        total = torch.zeros_like(x)
        for trial in range(args.paper_trials):
            u = torch.rand(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(trial))
            b = (u - mean) / std
            grads = []
            for i in range(args.steps + 1):
                xs = (b + i / args.steps * (x - b)).detach().requires_grad_()
                model.zero_grad()
                F.softmax(model(xs), dim=1)[:, target].sum().backward()
                grads.append(xs.grad.detach())
            total += (x - b) * torch.stack(grads[:-1]).mean(0)
        passes = args.paper_trials * (args.steps + 1)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "method": args.method, "wall_s": wall, "cpu_s": cpu, "peak_mb": peak_mb,
        "extra_mb": peak_mb - base_mb, "passes": passes, "chunk": chunk, "threads": args.threads,
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="densenet121", help="timm or cervattn model name (5 classes, random init)")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--methods", default="floor,explain,captum,captum_chunked,paper")
    p.add_argument("--paper-trials", type=int, default=10)
    p.add_argument("--chunk", type=int, default=0, help="rows per chunk for floor (0: explain's auto)")
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "0") or 0) or None)
    p.add_argument("--repeats", type=int, default=1,
                   help="run every method this many times (interleaved); report the fastest time, largest memory")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per child run")
    p.add_argument("--quick", action="store_true", help="128 px, 20 steps, 1 paper trial")
    p.add_argument("--json", default=None, help="also write the results here")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.threads is None:
        import torch

        args.threads = torch.get_num_threads()
    if args.quick:
        args.size, args.steps, args.paper_trials = 128, 20, 1
    if args.child:
        args.method = args.child
        print(json.dumps(_child(args)))
        return

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise SystemExit(f"unknown methods {sorted(unknown)}; choose from {', '.join(METHODS)}")
    print(f"model={args.model} size={args.size} steps={args.steps} threads={args.threads} "
          f"paper_trials={args.paper_trials} (one subprocess per method)", flush=True)
    best: dict[str, dict] = {}
    failed: set[str] = set()
    # Repeats interleave the methods, so a burst of load on a shared machine hits all of them.
    for rep in range(args.repeats):
        for m in methods:
            if m in failed:
                continue
            cmd = [sys.executable, __file__, "--child", m, "--model", args.model, "--size", str(args.size),
                   "--steps", str(args.steps), "--paper-trials", str(args.paper_trials),
                   "--chunk", str(args.chunk), "--threads", str(args.threads)]
            try:
                out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, check=True)
            except subprocess.TimeoutExpired:
                print(f"{m}: timed out after {args.timeout:.0f} s", flush=True)
                failed.add(m)
                continue
            except subprocess.CalledProcessError as err:
                print(f"{m}: failed\n{err.stderr[-2000:]}", flush=True)
                failed.add(m)
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"  [{rep + 1}/{args.repeats}] {m:15s} wall {r['wall_s']:7.2f} s  cpu {r['cpu_s']:7.2f} s  "
                  f"peak {r['peak_mb']:6.0f} MB (+{r['extra_mb']:.0f})", flush=True)
            if m not in best:
                best[m] = r
            else:  # fastest wall and CPU time, largest memory over the repeats
                b = best[m]
                b["wall_s"], b["cpu_s"] = min(b["wall_s"], r["wall_s"]), min(b["cpu_s"], r["cpu_s"])
                b["peak_mb"], b["extra_mb"] = max(b["peak_mb"], r["peak_mb"]), max(b["extra_mb"], r["extra_mb"])
    results = [best[m] for m in methods if m in best]

    floor = next((r for r in results if r["method"] == "floor"), None)
    print("\n| method | passes | wall s | CPU s | wall / floor | CPU / floor | peak RSS MB | attribution MB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        rw = f"{r['wall_s'] / floor['wall_s']:.2f}x" if floor else "-"
        rc = f"{r['cpu_s'] / floor['cpu_s']:.2f}x" if floor else "-"
        print(f"| {r['method']} | {r['passes']} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} | {rw} | {rc} | "
              f"{r['peak_mb']:.0f} | {r['extra_mb']:.0f} |")
        if r["method"] == "paper" and args.paper_trials < 10:
            k = 10 / args.paper_trials
            ew = f"{k * r['wall_s'] / floor['wall_s']:.1f}x" if floor else "-"
            print(f"| paper, EXTRAPOLATED to 10 trials (x{k:g}) | {int(r['passes'] * k)} | "
                  f"{k * r['wall_s']:.1f} | {k * r['cpu_s']:.1f} | {ew} | - | {r['peak_mb']:.0f} | "
                  f"{r['extra_mb']:.0f} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"config": {k: v for k, v in vars(args).items() if k != "child"}, "results": results}, fh,
                      indent=2)


if __name__ == "__main__":
    main()
