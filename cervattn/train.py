"""Training on SIPaKMeD: the seed paper's recipe by default, modern options, resumable, DDP-ready.

The default :class:`TrainConfig` is the recipe of Wang et al., "Towards Interpretable Attention
Networks for Cervical Cancer Analysis" (arXiv:2106.00557): Adam, lr 1e-3, batch 16, 50 epochs,
cross-entropy, best epoch by validation accuracy, on our grouped split (cells of one field image
never cross splits). Options: AdamW/SGD (any timm optimizer), cosine schedule with warmup, label
smoothing, mixed precision (bfloat16 on CPU, float16 on CUDA), EMA weights, early stopping, a
decoded-image cache, and the paper's own augmentation for comparison.

One code path runs on a CPU, one GPU, or several processes under ``torchrun`` (DDP; gloo on CPU,
nccl on CUDA; ``batch_size`` is the global batch, split evenly over processes; only rank 0
writes). A run killed at any point resumes from ``last.pt`` to the weights an uninterrupted run
reaches: the data order and the augmentation of every image are functions of ``(seed, epoch,
index)`` (see :mod:`cervattn.engine`) and all states are checkpointed.

Research use only, not for clinical diagnosis.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from timm.models import split_model_name_tag
from torch import nn
from torch.utils.data import Dataset, Subset

from . import __version__, checkpoint, engine
from .checkpoint import BEST_SIDECAR, LAST, LOG, jsonable, read_checkpoint, write_json
from .constants import RESEARCH_USE_NOTICE, SIPAKMED_CLASSES
from .engine import DistContext, EpochSampler, SeededDataset, init_distributed, make_loader, mix_seed

__all__ = ["TrainConfig", "TrainResult", "build_datasets", "build_model", "resume", "train"]

_logger = logging.getLogger(__name__)
_KINDS, _SCHEDS, _AUGS = ("isolated", "multi"), ("constant", "cosine"), ("cervattn", "paper", "none")
_METRICS = ("accuracy", "weighted_f1")
_DEFAULT_WD = {"adamw": 0.05, "sgd": 1e-4, "momentum": 1e-4, "nesterov": 1e-4}
#: Fields a resumed run may change: they do not alter the result (or extend it: epochs, patience).
RESUME_OVERRIDES = ("workers", "progress", "device", "cache", "cache_dir", "stop_after_epoch", "epochs",
                    "early_stopping")


@dataclass
class TrainConfig:
    """Everything that defines a training run; the defaults are the seed paper's recipe.

    Args:
        model: Architecture, optionally with a pretrained tag (``"rcan_densenet121"``,
            ``"ran_resnet50.a1_in1k"``); any name :func:`cervattn.create_model` accepts.
        data: SIPaKMeD root (the folder holding the five class folders).
        out: Run folder for ``log.jsonl``, ``last.pt``, ``best.safetensors`` and ``best.json``.
        kind: ``"isolated"`` cells or ``"multi"``-cell field images.
        split_file: Split CSV; ``None`` for the shipped grouped SIPaKMeD split.
        img_size: Square input size; ``None`` for the model's default (224 for the paper models).
        pretrained: Start from the tag's weights (e.g. an ImageNet start, ``rcan_densenet121.tv_in1k``).
        initial_checkpoint: Start from these weights instead: anything
            :func:`cervattn.checkpoint.load_model` reads (a run folder, ``best.safetensors``, ``.pt``).
        drop_rate: Classifier dropout; ``None`` for the model's default (0.5 in the paper's heads).
        epochs: Number of epochs (the schedule's length).
        batch_size: Global batch size (split over processes under ``torchrun``).
        opt: Optimizer name, as timm's ``create_optimizer_v2`` knows it (``adam``, ``adamw``, ``sgd``...).
        lr: Peak learning rate.
        weight_decay: ``None`` for 0 (Adam, as in the paper), 0.05 (AdamW) or 1e-4 (SGD).
        momentum: SGD momentum.
        sched: ``"constant"`` (paper) or ``"cosine"`` (to ``min_lr``), per step.
        warmup_epochs: Linear warmup length (may be fractional).
        min_lr: Final learning rate of the cosine schedule.
        label_smoothing: Cross-entropy label smoothing.
        grad_clip: Clip the gradient norm to this value.
        aug: ``"cervattn"`` (:func:`cervattn.data.train_transform`: crops, 90-degree and background-
            filled rotations, flips, mild colour jitter), ``"paper"`` (resize, centre crop, random
            rotation of 25 degrees) or ``"none"`` (the evaluation transform).
        amp: Mixed precision: bfloat16 autocast on CPU, float16 with loss scaling on CUDA.
        ema: Keep an exponential moving average of the weights; it is validated and saved as best.
        ema_decay: Its decay (with timm's warmup).
        early_stopping: Stop after this many epochs without improvement; ``None`` never stops.
        select_metric: ``"accuracy"`` (paper) or ``"weighted_f1"``, the best-epoch criterion.
        seed: Seeds model initialisation, data order and augmentation.
        workers: DataLoader worker processes; ``None`` for one less than the CPUs per process (max 8).
        cache: Keep decoded images in memory (:class:`cervattn.data.DecodedCache`, longer side at most
            twice ``img_size``).
        cache_dir: Also keep them as ``.npy`` files here, for later runs (implies ``cache``).
        limit_train: Train on a seeded random subset of this many images (smoke tests).
        limit_val: Validate on a seeded random subset of this many images.
        device: ``"cpu"``, ``"cuda"``...; ``None`` picks CUDA when available.
        sync_bn: Synchronise batch-norm statistics over processes (CUDA only; PyTorch has none on CPU).
        progress: Show progress bars (tqdm) on rank 0.
        stop_after_epoch: Stop after this many epochs as if killed (time-boxed jobs); resume later.
    """

    model: str
    data: str
    out: str
    kind: str = "isolated"
    split_file: str | None = None
    img_size: int | None = None
    pretrained: bool = False
    initial_checkpoint: str | None = None
    drop_rate: float | None = None
    epochs: int = 50
    batch_size: int = 16
    opt: str = "adam"
    lr: float = 1e-3
    weight_decay: float | None = None
    momentum: float = 0.9
    sched: str = "constant"
    warmup_epochs: float = 0.0
    min_lr: float = 0.0
    label_smoothing: float = 0.0
    grad_clip: float | None = None
    aug: str = "cervattn"
    amp: bool = False
    ema: bool = False
    ema_decay: float = 0.9998
    early_stopping: int | None = None
    select_metric: str = "accuracy"
    seed: int = 0
    workers: int | None = None
    cache: bool = False
    cache_dir: str | None = None
    limit_train: int | None = None
    limit_val: int | None = None
    device: str | None = None
    sync_bn: bool = False
    progress: bool = True
    stop_after_epoch: int | None = None

    def __post_init__(self) -> None:
        for name, value, accepted in (("kind", self.kind, _KINDS), ("sched", self.sched, _SCHEDS),
                                      ("aug", self.aug, _AUGS), ("select_metric", self.select_metric, _METRICS)):
            if value not in accepted:
                raise ValueError(f"{name}={value!r} is not one of {accepted}; pick one of them.")
        for name in ("epochs", "batch_size", "img_size", "early_stopping", "limit_train", "limit_val"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name}={value!r} is not accepted: give a positive integer.")
        if not (self.lr > 0 and 0 <= self.label_smoothing < 1 and self.warmup_epochs >= 0):
            raise ValueError(
                f"lr={self.lr}, label_smoothing={self.label_smoothing}, warmup_epochs={self.warmup_epochs}: "
                "lr must be > 0, label_smoothing in [0, 1), warmup_epochs >= 0."
            )
        self.data, self.out = os.fspath(self.data), os.fspath(self.out)


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        run_dir: The run folder.
        best_epoch: Epoch (1-based) of the best validation score, 0 if none was run.
        best_metrics: Validation metrics of that epoch (``accuracy``, ``weighted_f1``, ``macro_f1``, ``loss``).
        epochs_done: Epochs completed (including those before a resume).
        stopped_early: Whether early stopping ended the run.
        history: The ``log.jsonl`` records of this call's epochs.
    """

    run_dir: Path
    best_epoch: int
    best_metrics: dict[str, float]
    epochs_done: int
    stopped_early: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)


def build_model(cfg: TrainConfig) -> nn.Module:
    """Create ``cfg.model`` with five outputs; its ``pretrained_cfg`` records the training input."""
    from .checkpoint import load_model
    from .factory import create_model

    kwargs: dict[str, Any] = {"num_classes": len(SIPAKMED_CLASSES)}
    if cfg.drop_rate is not None:
        kwargs["drop_rate"] = cfg.drop_rate
    model = create_model(cfg.model, pretrained=cfg.pretrained, **kwargs)
    if cfg.initial_checkpoint:
        model.load_state_dict(load_model(cfg.initial_checkpoint).model.state_dict())
    size = cfg.img_size or model.pretrained_cfg.get("input_size", (3, 224, 224))[-1]
    model.pretrained_cfg = model.default_cfg = {
        **model.pretrained_cfg, "input_size": (3, size, size), "crop_pct": 1.0,
        "num_classes": len(SIPAKMED_CLASSES), "label_names": SIPAKMED_CLASSES,
    }
    return model


def _paper_transform(model: nn.Module):
    from timm.data.transforms import str_to_interp_mode
    from torchvision import transforms as T

    cfg = model.pretrained_cfg
    size = cfg["input_size"][-1]
    return T.Compose([T.Resize(size, interpolation=str_to_interp_mode(cfg.get("interpolation", "bilinear"))),
                      T.CenterCrop(size), T.RandomRotation(25), T.ToTensor(),
                      T.Normalize(mean=list(cfg["mean"]), std=list(cfg["std"]))])


def _subset(ds: Dataset, limit: int | None, seed: int) -> Dataset:
    if limit is None or limit >= len(ds):
        return ds
    g = torch.Generator().manual_seed(mix_seed(seed, 7919))
    return Subset(ds, sorted(torch.randperm(len(ds), generator=g)[:limit].tolist()))


def build_datasets(cfg: TrainConfig, model: nn.Module) -> tuple[Dataset, Dataset]:
    """The train and val datasets of ``cfg``, with the model's transforms (and the cache, preloaded)."""
    from .data import DEFAULT_SPLITS_PATH, DecodedCache, SIPaKMeD, eval_transform, train_transform

    train_tf = {"cervattn": train_transform, "none": eval_transform}.get(cfg.aug, lambda m: _paper_transform(m))
    cache = None
    if cfg.cache or cfg.cache_dir:
        cache = DecodedCache(max_side=2 * model.pretrained_cfg["input_size"][-1], cache_dir=cfg.cache_dir)
    common = dict(kind=cfg.kind, splits=cfg.split_file or DEFAULT_SPLITS_PATH, cache=cache)
    train_ds = SIPaKMeD(cfg.data, split="train", transform=train_tf(model), **common)
    val_ds = SIPaKMeD(cfg.data, split="val", transform=eval_transform(model), **common)
    train_ds, val_ds = _subset(train_ds, cfg.limit_train, cfg.seed), _subset(val_ds, cfg.limit_val, cfg.seed)
    if cache is not None:
        for ds in (train_ds, val_ds):
            base, idx = (ds.dataset, ds.indices) if isinstance(ds, Subset) else (ds, range(len(ds)))
            cache.preload([base.samples[i].path for i in idx], progress=False)
    return train_ds, val_ds


def _lr_schedule(cfg: TrainConfig, steps_per_epoch: int):
    total, warmup = cfg.epochs * steps_per_epoch, round(cfg.warmup_epochs * steps_per_epoch)

    def lr_at(step: int) -> float:
        if step < warmup:
            return cfg.lr * (step + 1) / warmup
        if cfg.sched == "constant":
            return cfg.lr
        t = (step - warmup) / max(1, total - warmup)
        return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * min(t, 1.0)))

    return lr_at


def _auto_workers(cfg: TrainConfig) -> int:
    if cfg.workers is not None:
        return cfg.workers
    per_process = (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(0, min(8, per_process - 1))


def _seed_all(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def train(config: TrainConfig, resume: bool = False) -> TrainResult:
    """Train a model on SIPaKMeD as ``config`` says, writing the run folder ``config.out``.

    Under ``torchrun`` every process calls this with the same ``config``; only rank 0 writes.

    Args:
        config: The run's :class:`TrainConfig`.
        resume: Continue the run in ``config.out`` from its ``last.pt`` (see :func:`resume`).

    Returns:
        A :class:`TrainResult`.

    Raises:
        FileExistsError: ``config.out`` already holds a run and ``resume`` is False.
        FileNotFoundError: ``resume`` is True but there is no ``last.pt``; or the data is not found.
        ValueError: The batch size does not split evenly over processes.

    Examples:
        >>> from cervattn.train import TrainConfig, train
        >>> result = train(TrainConfig("rcan_densenet121.tv_in1k", "~/data/sipakmed", "runs/rcan",
        ...                            pretrained=True))
        >>> result.best_metrics["accuracy"]
    """
    cfg = dataclasses.replace(config)
    if cfg.weight_decay is None:
        cfg.weight_decay = _DEFAULT_WD.get(cfg.opt.lower(), 0.0)
    workers = _auto_workers(cfg)
    run_dir = Path(cfg.out).expanduser()
    if (run_dir / LAST).is_file() and not resume:
        raise FileExistsError(
            f"{str(run_dir)!r} already holds a training run ({LAST}). Continue it with resume "
            f"(`cervattn train --resume {run_dir}`), or choose another output folder."
        )
    if resume and not (run_dir / LAST).is_file():
        raise FileNotFoundError(f"Cannot resume: {str(run_dir / LAST)!r} does not exist. Start the run without resume.")
    ctx = init_distributed(cfg.device)
    started_group = ctx.distributed
    if cfg.batch_size % ctx.world_size:
        raise ValueError(
            f"batch_size={cfg.batch_size} (the global batch) does not split over {ctx.world_size} processes; "
            f"use a multiple of {ctx.world_size}."
        )
    try:
        return _fit(cfg, ctx, run_dir, workers, resume)
    finally:
        if started_group and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def _fit(cfg: TrainConfig, ctx: DistContext, run_dir: Path, workers: int, resume: bool) -> TrainResult:
    from timm.optim import create_optimizer_v2
    from timm.utils import ModelEmaV3

    _seed_all(cfg.seed)
    model = build_model(cfg).to(ctx.device)
    train_ds, val_ds = build_datasets(cfg, model)
    if ctx.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / "args.json", dataclasses.asdict(cfg))
        _logger.info("Training %s on %d images, validating on %d (%s); %s", cfg.model, len(train_ds),
                     len(val_ds), cfg.kind, RESEARCH_USE_NOTICE)
    if cfg.sync_bn and ctx.distributed and ctx.device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    elif cfg.sync_bn and ctx.is_main:
        _logger.warning("sync_bn ignored: PyTorch synchronises batch norm only on CUDA with several processes.")
    net = model
    if ctx.distributed:
        ids = [ctx.local_rank] if ctx.device.type == "cuda" else None
        net = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    per_rank = cfg.batch_size // ctx.world_size
    train_sampler = EpochSampler(len(train_ds), cfg.seed, True, ctx.rank, ctx.world_size, cfg.batch_size, True)
    val_sampler = EpochSampler(len(val_ds), cfg.seed, False, ctx.rank, ctx.world_size)
    train_loader = make_loader(SeededDataset(train_ds, cfg.seed), train_sampler, per_rank, workers, ctx.device)
    val_loader = make_loader(SeededDataset(val_ds, cfg.seed), val_sampler, 2 * per_rank, workers, ctx.device)
    optimizer = create_optimizer_v2(model, cfg.opt, lr=cfg.lr, weight_decay=cfg.weight_decay, momentum=cfg.momentum)
    steps_per_epoch = len(train_loader)
    lr_at = _lr_schedule(cfg, steps_per_epoch)

    def set_lr(step: int) -> None:
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step) * group.get("lr_scale", 1.0)

    scaler = torch.amp.GradScaler("cuda") if cfg.amp and ctx.device.type == "cuda" else None
    ema = ModelEmaV3(model, decay=cfg.ema_decay, use_warmup=True) if cfg.ema else None
    loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    arch = model.pretrained_cfg.get("architecture") or split_model_name_tag(cfg.model)[0]

    start, best, best_epoch, best_metrics, stopped = 0, -math.inf, 0, {}, False
    if resume:
        ckpt = read_checkpoint(run_dir / LAST)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if ema is not None and ckpt.get("ema"):
            ema.load_state_dict(ckpt["ema"])
        if scaler is not None and ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        start, best, best_epoch = ckpt["epoch"], ckpt["best_metric"], ckpt["best_epoch"]
        if (run_dir / BEST_SIDECAR).is_file():
            best_metrics = json.loads((run_dir / BEST_SIDECAR).read_text(encoding="utf-8")).get("metrics", {})
        checkpoint.restore_rng(ckpt["rng"])
        if ctx.is_main:
            checkpoint.truncate_log(run_dir / LOG, start)
            _logger.info("Resuming %s after epoch %d (best %s %.4f at epoch %d)", run_dir, start,
                         cfg.select_metric, best, best_epoch)
    if cfg.early_stopping and start - best_epoch >= cfg.early_stopping:
        stopped = True  # the run had already stopped early
    history: list[dict[str, Any]] = []
    for epoch in range(start, cfg.epochs):
        if stopped or (cfg.stop_after_epoch is not None and epoch >= cfg.stop_after_epoch):
            break
        t0 = time.perf_counter()
        torch.manual_seed(mix_seed(cfg.seed, epoch, ctx.rank, 1))  # dropout and the like
        train_sampler.set_epoch(epoch)
        stats = engine.train_one_epoch(
            net, train_loader, optimizer, loss_fn, ctx.device, set_lr=set_lr, step=epoch * steps_per_epoch,
            amp=cfg.amp, scaler=scaler, ema=ema, grad_clip=cfg.grad_clip,
            progress=cfg.progress and ctx.is_main, desc=f"epoch {epoch + 1}/{cfg.epochs}",
        )
        loss_sum, correct, n = ctx.all_sum([stats["loss"] * stats["images"], stats["acc"] * stats["images"],
                                            stats["images"]])
        eval_model = ema.module if ema is not None else model
        if ctx.distributed:  # every rank validates with rank 0's batch-norm statistics
            for buffer in eval_model.buffers():
                torch.distributed.broadcast(buffer, 0)
        val = engine.validate(eval_model, val_loader, ctx, amp=cfg.amp)
        improved = val[cfg.select_metric] > best
        if improved:
            best, best_epoch, best_metrics = val[cfg.select_metric], epoch + 1, val
        record = {
            "epoch": epoch + 1, "train_loss": loss_sum / max(n, 1), "train_acc": correct / max(n, 1),
            "val_loss": val["loss"], "val_acc": val["accuracy"], "val_weighted_f1": val["weighted_f1"],
            "val_macro_f1": val["macro_f1"], "lr": optimizer.param_groups[0]["lr"],
            "epoch_time": time.perf_counter() - t0, "train_time": stats["time"],
            "images_per_s": n / max(stats["time"], 1e-9), "best": improved,
        }
        history.append(record)
        if ctx.is_main:
            _save_epoch(cfg, run_dir, arch, model, eval_model, optimizer, ema, scaler, record, val, improved,
                        best, best_epoch, epoch + 1, steps_per_epoch)
            _logger.info("epoch %d/%d  train loss %.4f acc %.4f  val loss %.4f acc %.4f wF1 %.4f  %.1f img/s%s",
                         epoch + 1, cfg.epochs, record["train_loss"], record["train_acc"], val["loss"],
                         val["accuracy"], val["weighted_f1"], record["images_per_s"], "  *" if improved else "")
        if cfg.early_stopping and epoch + 1 - best_epoch >= cfg.early_stopping:
            stopped = True
            if ctx.is_main:
                _logger.info("Early stopping: no improvement for %d epochs.", cfg.early_stopping)
    done = history[-1]["epoch"] if history else start
    return TrainResult(run_dir, best_epoch, best_metrics, done, stopped, history)


def _save_epoch(cfg, run_dir, arch, model, eval_model, optimizer, ema, scaler, record, val, improved,
                best, best_epoch, epoch, steps_per_epoch) -> None:
    args = dataclasses.asdict(cfg)
    pretrained_cfg = jsonable(model.pretrained_cfg)
    if improved:
        sidecar = {
            "arch": arch, "args": args, "epoch": epoch, "metrics": val, "num_classes": len(SIPAKMED_CLASSES),
            "label_names": list(SIPAKMED_CLASSES), "img_size": model.pretrained_cfg["input_size"][-1],
            "ema": ema is not None, "pretrained_cfg": pretrained_cfg, "cervattn_version": __version__,
            "torch_version": torch.__version__, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "notice": RESEARCH_USE_NOTICE,
        }
        checkpoint.save_best(run_dir, eval_model, sidecar)
    with (run_dir / LOG).open("a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
    checkpoint.save_checkpoint(run_dir / LAST, {
        "format": "cervattn.train/1", "arch": arch, "args": args, "epoch": epoch, "metrics": val,
        "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "scheduler": {"name": cfg.sched, "step": epoch * steps_per_epoch},
        "ema": ema.state_dict() if ema is not None else {}, "scaler": scaler.state_dict() if scaler else {},
        "rng": checkpoint.capture_rng(), "best_metric": best, "best_epoch": best_epoch,
        "pretrained_cfg": jsonable(pretrained_cfg), "cervattn_version": __version__,
    })


def resume(run_dir: str | os.PathLike, **overrides: Any) -> TrainResult:
    """Continue the run in ``run_dir`` from its ``last.pt``, with the configuration it was started with.

    Args:
        run_dir: The run folder.
        **overrides: New values for fields that do not change the result: ``workers``, ``progress``,
            ``device``, ``cache``, ``cache_dir``, ``stop_after_epoch``; or extend the run: ``epochs``,
            ``early_stopping``.

    Raises:
        KeyError: An override of another field.
    """
    bad = sorted(set(overrides) - set(RESUME_OVERRIDES))
    if bad:
        raise KeyError(
            f"Cannot change {bad} when resuming: they change the result. Accepted: {RESUME_OVERRIDES}; "
            "start a new run for other settings."
        )
    ckpt = read_checkpoint(Path(run_dir).expanduser() / LAST)
    args = {k: v for k, v in ckpt["args"].items() if k in {f.name for f in dataclasses.fields(TrainConfig)}}
    args.update(out=os.fspath(run_dir), stop_after_epoch=None)
    args.update(overrides)
    return train(TrainConfig(**args), resume=True)
