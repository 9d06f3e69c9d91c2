"""Rendering of evaluation metrics: the confusion-matrix figure (matplotlib, headless).

Kept apart from :mod:`cervattn.metrics` so that computing metrics needs numpy only; matplotlib is
imported when a figure is drawn.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cervattn.constants import SIPAKMED_CLASSES

__all__ = ["confusion_matrix_figure"]


def _matplotlib():
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(
            "Drawing figures needs matplotlib: pip install matplotlib (or pip install 'cervattn[viz]')."
        ) from None
    return Figure, FigureCanvasAgg


def confusion_matrix_figure(
    cm: Any,
    class_names: Sequence[str] | None = SIPAKMED_CLASSES,
    path: str | os.PathLike = "confusion_matrix.png",
    normalize: bool = False,
    title: str | None = None,
    dpi: int = 150,
) -> Path:
    """Write a confusion matrix as a PNG (no display needed; pyplot's global state is not used).

    Args:
        cm: Square matrix (rows true, columns predicted), or a report from
            :func:`cervattn.metrics.classification_report` (its ``confusion_matrix`` is used).
        class_names: One name per class (default: ``SIPAKMED_CLASSES``); ``None`` for "0", "1", ...
        path: Output file; parent folders are created.
        normalize: Colour and annotate by row (recall per true class) instead of counts.
        title: Figure title.
        dpi: Resolution of the PNG.

    Returns:
        The path written.

    Raises:
        ImportError: matplotlib is not installed (``pip install matplotlib``).
        ValueError: ``cm`` is not square or does not match ``class_names``.
    """
    if isinstance(cm, Mapping):
        cm = cm["confusion_matrix"]
    cm = np.asarray(cm, dtype=np.float64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"cm must be a square matrix (rows true, columns predicted); got shape {cm.shape}.")
    k = cm.shape[0]
    names = [str(i) for i in range(k)] if class_names is None else list(class_names)
    if len(names) != k:
        raise ValueError(f"class_names has {len(names)} names for a {k}x{k} matrix; pass one name per class.")
    Figure, FigureCanvasAgg = _matplotlib()
    rows = cm.sum(1, keepdims=True)
    shown = np.divide(cm, rows, out=np.zeros_like(cm), where=rows != 0) if normalize else cm

    fig = Figure(figsize=(1.2 * k + 2.5, 1.1 * k + 2.0), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else max(shown.max(), 1))
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set(xticks=range(k), yticks=range(k), xlabel="Predicted", ylabel="True", title=title or "")
    ax.set_xticklabels(names, rotation=35, ha="right")
    ax.set_yticklabels(names)
    threshold = shown.max() / 2 if shown.size else 0
    for i in range(k):
        for j in range(k):
            text = f"{shown[i, j]:.2f}" if normalize else f"{int(cm[i, j])}"
            color = "white" if shown[i, j] > threshold else "black"
            ax.text(j, i, text, ha="center", va="center", color=color, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path


def training_curves_figure(log: Sequence[Mapping[str, Any]], path: str | os.PathLike, dpi: int = 120) -> Path:
    """Plot loss and accuracy per epoch from a run's ``log.jsonl`` records, as a PNG.

    Args:
        log: One record per epoch with ``epoch``, ``train_loss``, ``val_loss``, ``train_acc``, ``val_acc``.
        path: Output file; parent folders are created.
        dpi: Resolution of the PNG.

    Returns:
        The path written.
    """
    Figure, FigureCanvasAgg = _matplotlib()
    epochs = [r["epoch"] for r in log]
    fig = Figure(figsize=(9, 3.4), dpi=dpi)
    FigureCanvasAgg(fig)
    for index, (metric, label) in enumerate((("loss", "cross-entropy loss"), ("acc", "accuracy"))):
        ax = fig.add_subplot(1, 2, index + 1)
        for split in ("train", "val"):
            values = [r.get(f"{split}_{metric}") for r in log]
            if any(v is not None for v in values):
                ax.plot(epochs, values, marker="o", markersize=3, label=split)
        ax.set(xlabel="epoch", ylabel=label)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
