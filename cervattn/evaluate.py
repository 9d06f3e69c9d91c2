"""Evaluation of a classifier on SIPaKMeD, with the metrics and layout of the seed paper's Table II.

Accuracy, the support-weighted F1 of the paper's Eq. 1, macro F1, per-class precision, recall and
F1, the confusion matrix, percentile-bootstrap 95% confidence intervals (one multi-cell test image
is about one point of accuracy, so most differences in Table II are within noise), and
field-level accuracy: the cells cut from one SIPaKMeD field image share its class, so their
predictions are pooled per field (:func:`cervattn.metrics.field_level_accuracy`).

:func:`evaluate` works on any model and dataset; :func:`evaluate_model` is the whole pipeline of
``cervattn evaluate``: it loads a model from a name, release folder or training run
(:func:`cervattn.checkpoint.load_model`) and a SIPaKMeD folder, with or without a split file.

Research use only, not for clinical diagnosis.
"""

from __future__ import annotations

import csv
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from . import __version__
from .checkpoint import atomic_write, jsonable, write_json
from .constants import RESEARCH_USE_NOTICE, SIPAKMED_CLASSES
from .engine import TransformedDataset, predict_logits, resolve_device
from .metrics import add_bootstrap_ci, classification_report, field_level_accuracy, markdown_table

__all__ = ["EvaluationResult", "evaluate", "evaluate_model", "label_names"]

_SPLITS = ("train", "val", "test", "all")


def label_names(model: nn.Module, num_classes: int) -> list[str]:
    """The model's class names (``pretrained_cfg["label_names"]``), else SIPaKMeD's or ``"0"..``."""
    names = (getattr(model, "pretrained_cfg", None) or {}).get("label_names")
    if names and len(names) == num_classes:
        return list(names)
    return list(SIPAKMED_CLASSES) if num_classes == len(SIPAKMED_CLASSES) else [str(i) for i in range(num_classes)]


@dataclass
class EvaluationResult:
    """Metrics and per-image outputs of :func:`evaluate`.

    Attributes:
        report: :func:`cervattn.metrics.classification_report` with bootstrap CIs under ``"ci"``:
            ``n``, ``accuracy``, ``weighted_f1``, ``macro_f1``, ``per_class``, ``confusion_matrix``...
        field_level: ``{"accuracy", "n_fields", "n_correct"}`` for isolated cells, else ``None``.
        probs: Softmax probabilities ``(n, classes)``.
        targets: True labels ``(n,)``.
        paths: The image file of each row, when the dataset has ``samples``.
        n_missing: Split-file rows of the selection whose image was absent (``dataset.missing``).
        meta: What was evaluated (model, source, data root, kind, split, image size, versions, time),
            filled by :func:`evaluate_model`.
    """

    report: dict[str, Any]
    field_level: dict[str, Any] | None
    probs: np.ndarray
    targets: np.ndarray
    paths: list[str] | None = None
    n_missing: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        return float(self.report["accuracy"])

    @property
    def preds(self) -> np.ndarray:
        return self.probs.argmax(1) if len(self.probs) else np.zeros(0, dtype=np.int64)

    def to_dict(self) -> dict[str, Any]:
        """Everything a model card needs, JSON-ready (no per-image rows)."""
        return jsonable({**self.meta, "n_images": int(self.report["n"]), "n_missing": self.n_missing,
                         "metrics": self.report, "field_level": self.field_level, "notice": RESEARCH_USE_NOTICE})

    def markdown(self, name: str | None = None, **kwargs: Any) -> str:
        """A Table II-style markdown table (see :func:`cervattn.metrics.markdown_table`)."""
        return markdown_table({name or self.meta.get("model", "model"): self.report}, **kwargs)

    def save(self, out_dir: str | os.PathLike, name: str | None = None) -> dict[str, Path]:
        """Write ``metrics.json``, ``table.md``, ``confusion_matrix.png`` and ``predictions.csv``."""
        from .viz_metrics import confusion_matrix_figure

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        names = self.report["class_names"]
        files = {"json": write_json(out / "metrics.json", self.to_dict())}
        table = self.markdown(name) + f"\n{RESEARCH_USE_NOTICE}\n"
        files["table"] = atomic_write(out / "table.md", lambda tmp: Path(tmp).write_text(table, encoding="utf-8"))
        title = f"{name or self.meta.get('model', '')} {self.meta.get('split', '')}".strip()
        files["confusion_matrix"] = confusion_matrix_figure(self.report, names, out / "confusion_matrix.png",
                                                            title=title or None)

        def write_csv(tmp: str) -> None:
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(["image", "label", "prediction", *[f"p_{c}" for c in names]])
                for i, (t, p) in enumerate(zip(self.targets, self.probs)):
                    image = self.paths[i] if self.paths else str(i)
                    w.writerow([image, names[t], names[int(p.argmax())], *[f"{v:.6f}" for v in p]])

        files["predictions"] = atomic_write(out / "predictions.csv", write_csv)
        return files


def _base(dataset: Dataset) -> tuple[Dataset, list[int] | None]:
    """The underlying dataset and the selected indices, through ``Subset`` wrappers."""
    indices = None
    while hasattr(dataset, "dataset") and hasattr(dataset, "indices"):
        indices = [dataset.indices[i] for i in indices] if indices is not None else list(dataset.indices)
        dataset = dataset.dataset
    return dataset, indices


def evaluate(
    model: nn.Module,
    dataset: Dataset,
    *,
    batch_size: int = 64,
    workers: int = 0,
    device: str | torch.device | None = None,
    amp: bool = False,
    transform: Any = None,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    progress: bool = False,
) -> EvaluationResult:
    """Evaluate ``model`` on every image of ``dataset``.

    Args:
        model: A classifier; put on ``device`` and set to eval mode for the call.
        dataset: Yields ``(image, label)``: tensors ``(3, H, W)`` already transformed, or PIL images,
            which get ``transform``. A :class:`cervattn.data.SIPaKMeD` (or a ``Subset`` of one) also
            gives image paths, field ids for field-level accuracy, and ``missing``.
        batch_size: Images per forward pass.
        workers: DataLoader worker processes.
        device: ``None`` for CUDA when available, else the CPU.
        amp: Mixed-precision inference (bfloat16 on CPU, float16 on CUDA).
        transform: For PIL images; default :func:`cervattn.data.eval_transform` of the model.
        n_boot: Bootstrap resamples for the CIs (0 for none).
        alpha: 1 - confidence level of the CIs.
        seed: Seed of the bootstrap.
        progress: Show a progress bar.

    Returns:
        An :class:`EvaluationResult`.

    Examples:
        >>> from cervattn.data import SIPaKMeD, eval_transform
        >>> ds = SIPaKMeD(root, split="val", transform=eval_transform(model))
        >>> result = evaluate(model, ds)
        >>> print(result.markdown("rcan_densenet121"))
    """
    from .data import eval_transform

    dev = resolve_device(device)
    model = model.to(dev)
    data = TransformedDataset(dataset, transform if transform is not None else eval_transform(model))
    loader = DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=workers)
    logits, targets, _ = predict_logits(model, loader, dev, amp=amp, progress=progress, desc="evaluate")
    num_classes = logits.shape[1] if logits.ndim == 2 and logits.shape[1] else len(SIPAKMED_CLASSES)
    probs = torch.softmax(logits, 1).numpy().astype(np.float64)
    y = targets.numpy()
    report = classification_report(y, probs.argmax(1) if len(y) else y, num_classes, label_names(model, num_classes))
    if n_boot and len(y):
        report = add_bootstrap_ci(report, y, probs.argmax(1), n_boot=n_boot, alpha=alpha, seed=seed)
    base, indices = _base(dataset)
    samples = getattr(base, "samples", None)
    paths = fields = None
    if samples is not None and hasattr(samples[0] if samples else None, "path"):
        chosen = [samples[i] for i in (indices if indices is not None else range(len(samples)))]
        paths = [str(s.path) for s in chosen]
        fields = [s.field for s in chosen]
    field_level = None
    if fields is not None and getattr(base, "kind", "isolated") == "isolated" and len(y):
        field_level = field_level_accuracy(fields, y, probs / probs.sum(1, keepdims=True), num_classes)
    return EvaluationResult(report, field_level, probs, y, paths, int(getattr(base, "missing", 0)))


def evaluate_model(
    model: str | os.PathLike,
    data: str | os.PathLike,
    *,
    split: str = "test",
    kind: str = "isolated",
    split_file: str | os.PathLike | None = "shipped",
    img_size: int | None = None,
    batch_size: int = 64,
    workers: int = 0,
    device: str | None = None,
    amp: bool = False,
    n_boot: int = 1000,
    seed: int = 0,
    progress: bool = False,
) -> EvaluationResult:
    """Load a model and a SIPaKMeD folder and evaluate: what ``cervattn evaluate`` runs.

    Args:
        model: A registered name with a pretrained tag, a release folder (``config.json`` +
            ``model.safetensors``), or a training run folder or checkpoint (see
            :func:`cervattn.checkpoint.load_model`).
        data: A folder in the official SIPaKMeD layout (or the variants :class:`~cervattn.data.SIPaKMeD`
            reads).
        split: ``"train"``, ``"val"``, ``"test"`` or ``"all"`` (every image found).
        kind: ``"isolated"`` cells or ``"multi"``-cell field images.
        split_file: ``"shipped"`` for the shipped grouped split, a CSV path, or ``None`` for no split
            file (then ``split`` must be ``"all"``).
        img_size: Input size; default: the one recorded with the weights.
        batch_size, workers, device, amp, n_boot, seed, progress: See :func:`evaluate`.

    Returns:
        An :class:`EvaluationResult` whose ``meta`` names the model, its source, the data, kind,
        split, split file, image size, versions and time.

    Raises:
        ValueError: Unknown ``split``, or a split other than ``"all"`` without a split file.
    """
    import timm

    from .checkpoint import load_model
    from .data import DEFAULT_SPLITS_PATH, SIPaKMeD

    if split not in _SPLITS:
        raise ValueError(f"split={split!r} is not one of {_SPLITS}; 'all' evaluates every image found.")
    if split_file is None and split != "all":
        raise ValueError(
            f"split={split!r} needs a split file, but split_file=None. Use split='all' to evaluate every image, "
            "or give a split file."
        )
    splits = DEFAULT_SPLITS_PATH if split_file == "shipped" else split_file
    start = time.time()
    loaded = load_model(model, img_size=img_size, device=resolve_device(device))
    dataset = SIPaKMeD(data, kind=kind, split=None if split == "all" else split, splits=splits)
    result = evaluate(loaded.model, dataset, batch_size=batch_size, workers=workers, device=device, amp=amp,
                      n_boot=n_boot, seed=seed, progress=progress)
    cfg = loaded.model.pretrained_cfg
    result.meta = {
        "model": loaded.name, "source": loaded.source, "checkpoint": loaded.path,
        "tag": loaded.name.split(".", 1)[1] if loaded.source == "pretrained" and "." in loaded.name else None,
        "trained_epoch": loaded.info.get("epoch"), "data_root": str(Path(data).expanduser().resolve()),
        "kind": kind, "split": split, "split_file": None if splits is None else str(splits),
        "img_size": list(cfg.get("input_size", (3, 0, 0))[1:]), "mean": cfg.get("mean"), "std": cfg.get("std"),
        "cervattn_version": __version__, "torch_version": torch.__version__, "timm_version": timm.__version__,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(start)), "duration_s": time.time() - start,
    }
    return result
