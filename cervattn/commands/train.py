"""``cervattn train``: train a model on SIPaKMeD (the seed paper's recipe by default), or resume a run."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys

HELP = "train a model on SIPaKMeD (paper recipe by default; resumable; runs under torchrun)"

_TRAIN_CONFIG_FIELDS: dict[str, dataclasses.Field] = {}


def _default(name: str):
    if not _TRAIN_CONFIG_FIELDS:
        from ..train import TrainConfig

        _TRAIN_CONFIG_FIELDS.update({f.name: f for f in dataclasses.fields(TrainConfig)})
    return _TRAIN_CONFIG_FIELDS[name].default


def add_arguments(parser: argparse.ArgumentParser) -> None:
    S = argparse.SUPPRESS  # unset options keep TrainConfig's defaults (one source of truth)
    p = parser.add_argument_group("run")
    p.add_argument("--model", default=S, help="architecture, optionally with a tag, e.g. rcan_densenet121.tv_in1k")
    p.add_argument("--data", default=S, help="SIPaKMeD root (the folder holding the five class folders)")
    p.add_argument("--out", default=S, help="run folder: log.jsonl, last.pt, best.safetensors, best.json")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR with its own settings")
    p.add_argument("--kind", choices=("isolated", "multi"), default=S, help="isolated cells (default) or multi-cell fields")
    p.add_argument("--split-file", default=S, help="split CSV (default: the shipped grouped split)")
    p.add_argument("--seed", type=int, default=S, help=f"seed of init, data order, augmentation (default {_default('seed')})")
    p.add_argument("--stop-after-epoch", type=int, default=S, metavar="N",
                   help="stop after N epochs as if killed (time-boxed jobs); --resume continues")
    m = parser.add_argument_group("model")
    m.add_argument("--img-size", type=int, default=S, help="input size in px (default: the model's, 224 for paper models)")
    m.add_argument("--pretrained", action="store_true", default=S, help="start from the tag's weights (e.g. ImageNet)")
    m.add_argument("--initial-checkpoint", default=S, help="start from these weights (run folder, .safetensors, .pt)")
    m.add_argument("--drop-rate", type=float, default=S, help="classifier dropout (default: the model's)")
    o = parser.add_argument_group("optimisation")
    o.add_argument("--epochs", "--max-epochs", dest="epochs", type=int, default=S,
                   help=f"number of epochs (default {_default('epochs')})")
    o.add_argument("--batch-size", type=int, default=S, help=f"global batch size (default {_default('batch_size')})")
    o.add_argument("--opt", default=S, help=f"optimizer, any timm name: adam, adamw, sgd... (default {_default('opt')})")
    o.add_argument("--lr", type=float, default=S, help=f"learning rate (default {_default('lr')})")
    o.add_argument("--weight-decay", type=float, default=S, help="default 0 (adam), 0.05 (adamw), 1e-4 (sgd)")
    o.add_argument("--momentum", type=float, default=S, help=f"SGD momentum (default {_default('momentum')})")
    o.add_argument("--sched", choices=("constant", "cosine"), default=S, help="LR schedule (default constant)")
    o.add_argument("--warmup-epochs", type=float, default=S, help="linear LR warmup epochs (default 0)")
    o.add_argument("--min-lr", type=float, default=S, help="final LR of the cosine schedule (default 0)")
    o.add_argument("--label-smoothing", type=float, default=S, help="cross-entropy label smoothing (default 0)")
    o.add_argument("--grad-clip", type=float, default=S, help="clip the gradient norm to this value")
    o.add_argument("--aug", choices=("cervattn", "paper", "none"), default=S,
                   help="training augmentation: cervattn (default), paper (rotation 25), none")
    o.add_argument("--amp", action="store_true", default=S, help="mixed precision (bf16 on CPU, fp16 on CUDA)")
    o.add_argument("--ema", action="store_true", default=S, help="validate and save an EMA of the weights")
    o.add_argument("--ema-decay", type=float, default=S, help=f"EMA decay (default {_default('ema_decay')})")
    o.add_argument("--early-stopping", type=int, default=S, metavar="PATIENCE",
                   help="stop after PATIENCE epochs without improvement")
    o.add_argument("--select-metric", choices=("accuracy", "weighted_f1"), default=S,
                   help="best-epoch criterion on validation (default accuracy)")
    d = parser.add_argument_group("data and machine")
    d.add_argument("--workers", type=int, default=S, help="DataLoader workers (default: CPUs per process - 1, max 8)")
    d.add_argument("--cache", action="store_true", default=S, help="keep decoded images in memory")
    d.add_argument("--cache-dir", default=S, help="also keep decoded images as .npy files here")
    d.add_argument("--limit-train", type=int, default=S, metavar="N", help="train on a random subset of N images")
    d.add_argument("--limit-val", type=int, default=S, metavar="N", help="validate on a random subset of N images")
    d.add_argument("--device", default=S, help="cpu, cuda, cuda:1 (default: cuda when available)")
    d.add_argument("--sync-bn", action="store_true", default=S, help="synchronised batch norm (CUDA DDP only)")
    d.add_argument("--no-progress", dest="progress", action="store_false", default=S, help="no progress bars")
    d.add_argument("--threads", type=int, help="torch intra-op threads of each process (default: torch's)")


def run(args: argparse.Namespace) -> int:
    import torch

    from ..train import TrainConfig, resume, train

    main_process = os.environ.get("RANK", "0") == "0"  # under torchrun, only rank 0 reports
    if not logging.getLogger().handlers:
        level = logging.INFO if main_process else logging.WARNING
        logging.basicConfig(level=level, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    if args.threads:
        torch.set_num_threads(args.threads)
    options = {k: v for k, v in vars(args).items() if k not in ("command", "func", "resume", "threads")}
    if args.resume:
        result = resume(args.resume, **options)
    else:
        missing = [f"--{k}" for k in ("model", "data", "out") if k not in options]
        if missing:
            sys.stderr.write(f"cervattn train: {', '.join(missing)} required (or --resume RUN_DIR).\n")
            return 2
        result = train(TrainConfig(**options))
    m = result.best_metrics
    if m and main_process:
        sys.stdout.write(
            f"best epoch {result.best_epoch}/{result.epochs_done}: val accuracy {m['accuracy']:.4f}, weighted F1 "
            f"{m['weighted_f1']:.4f}; weights in {result.run_dir / 'best.safetensors'}\n"
        )
    return 0
