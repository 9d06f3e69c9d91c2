"""Rendering of :class:`cervattn.explanations.Explanation`: the paper's Fig. 2 and single overlays.

Rendering only, nothing is computed here beyond normalising maps for display. matplotlib is
imported lazily (``pip install matplotlib``, or ``pip install cervattn[viz]``), and figures are
drawn on matplotlib's Agg canvas directly, so this works headless and never switches the
caller's pyplot backend.

Display convention (the seed paper's Fig. 2, R. Wang et al., arXiv:2106.00557, and the
integrated-gradients visualisation it used): an attribution is reduced to one gray value per
pixel (positive part, mean over channels), clipped at its 99th percentile and scaled to [0, 1];
maps are drawn green on black, overlays as ``0.7 * image + 0.5 * map * green``. Soft masks,
which have no zero level, are stretched between their 1st and 99th percentiles.

Research use only, not for clinical diagnosis.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .constants import RESEARCH_USE_NOTICE

if TYPE_CHECKING:
    from .explanations import Explanation

__all__ = [
    "attribution_to_gray",
    "overlay",
    "colorize",
    "plot_overlay",
    "plot_paper_figure",
    "plot_channel_attention",
    "plot_comparison",
    "save_figure",
]

GREEN = (0, 255, 0)
_FORMATS = (".png", ".pdf", ".svg")


def _figure(width: float, height: float):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError(
            "cervattn.viz needs matplotlib, which is not installed. Install it with "
            "`pip install matplotlib` (or `pip install cervattn[viz]`)."
        ) from err
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def attribution_to_gray(
    attribution: np.ndarray,
    *,
    polarity: Literal["positive", "negative", "abs"] = "positive",
    clip_percentile: float = 99.0,
    low_percentile: float | None = None,
) -> np.ndarray:
    """One display value in [0, 1] per pixel.

    Args:
        attribution: ``(C, H, W)`` or ``(H, W)``.
        polarity: ``'positive'`` keeps evidence for the class (the paper), ``'negative'``
            evidence against it, ``'abs'`` both, by magnitude.
        clip_percentile: Values above this percentile of the non-zero values saturate.
        low_percentile: If given, values below this percentile map to 0 (a contrast stretch,
            for maps without a zero level such as soft masks, which lie in (0, 1)).

    Returns:
        ``(H, W)`` float32 in [0, 1]; all zeros when there is nothing to show.
    """
    a = np.asarray(attribution, dtype=np.float64)
    if a.ndim == 2:
        a = a[None]
    if polarity == "positive":
        a = np.clip(a, 0, None)
    elif polarity == "negative":
        a = np.clip(-a, 0, None)
    elif polarity == "abs":
        a = np.abs(a)
    else:
        raise ValueError(f"polarity={polarity!r}; accepted: 'positive', 'negative', 'abs'.")
    gray = a.mean(0)
    if low_percentile is not None:
        gray = np.clip(gray - np.percentile(gray, low_percentile), 0, None)
    nonzero = gray[gray > 0]
    if nonzero.size == 0:
        return np.zeros(gray.shape, dtype=np.float32)
    top = np.percentile(nonzero, clip_percentile)
    if top <= 0:
        top = nonzero.max()
    return np.clip(gray / top, 0, 1).astype(np.float32)


def colorize(gray: np.ndarray, color: tuple[int, int, int] = GREEN) -> np.ndarray:
    """A gray map in [0, 1] drawn in ``color`` on black, ``(H, W, 3)`` uint8."""
    return np.clip(gray[..., None] * np.asarray(color, dtype=np.float64), 0, 255).astype(np.uint8)


def overlay(image: np.ndarray, gray: np.ndarray, color: tuple[int, int, int] = GREEN) -> np.ndarray:
    """``0.7 * image + 0.5 * map * color``, ``(H, W, 3)`` uint8 (the paper's overlay)."""
    out = 0.7 * image.astype(np.float64) + 0.5 * gray[..., None] * np.asarray(color, dtype=np.float64)
    return np.clip(out, 0, 255).astype(np.uint8)


def save_figure(fig, path: str | os.PathLike, dpi: int = 150) -> Path:
    """Save a figure as PNG, PDF or SVG (by suffix); parent folders are created."""
    path = Path(path)
    if path.suffix.lower() not in _FORMATS:
        raise ValueError(
            f"cannot save a figure as {path.name!r}; accepted suffixes: {', '.join(_FORMATS)}."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight", facecolor="white")
    return path


def _default_polarity(method: str) -> str:
    # Gradients are signed per channel with no meaningful sign at the input: show magnitude.
    return "abs" if method in ("saliency", "smoothgrad") else "positive"


def _title(e: Explanation, index: int) -> str:
    p = float(e.probabilities[index, int(e.target[index])])
    pred = e.predicted_labels[index]
    label = e.labels[index]
    head = f"{label} (p={p:.2f})"
    return head if pred == label else f"{head}, predicted {pred}"


def _panel(ax, img: np.ndarray, title: str) -> None:
    ax.imshow(img, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()


def _notice(fig) -> None:
    fig.text(0.5, 0.005, RESEARCH_USE_NOTICE, ha="center", va="bottom", fontsize=6, color="0.35")


def _check_index(e: Explanation, index: int) -> int:
    if not -len(e) <= index < len(e):
        raise IndexError(f"index {index} out of range for an Explanation of {len(e)} images")
    return index % len(e)


def plot_overlay(
    explanation: Explanation,
    index: int = 0,
    *,
    polarity: Literal["positive", "negative", "abs"] | None = None,
    clip_percentile: float = 99.0,
    path: str | os.PathLike | None = None,
    title: str | None = None,
) -> Any:
    """Image, attribution overlay and attribution map of one image (a matplotlib Figure).

    For ``method='channel_attention'`` this draws :func:`plot_channel_attention` instead.

    Args:
        explanation: From :func:`cervattn.explain`.
        index: Which image of the batch.
        polarity: See :func:`attribution_to_gray`; default ``'positive'``, ``'abs'`` for
            saliency and SmoothGrad.
        clip_percentile: See :func:`attribution_to_gray`.
        path: Also save the figure there (PNG, PDF or SVG).
        title: Figure title; default: explained class, probability and method.
    """
    if explanation.attributions is None:
        return plot_channel_attention(explanation, index, path=path)
    i = _check_index(explanation, index)
    gray = attribution_to_gray(
        explanation.attributions[i],
        polarity=polarity or _default_polarity(explanation.method),
        clip_percentile=clip_percentile,
        # Soft masks have no zero level (sigmoid outputs): stretch between the 1st and 99th percentile.
        low_percentile=1.0 if explanation.method == "soft_mask" else None,
    )
    image = explanation.image[i]
    fig = _figure(7.5, 2.9)
    axes = fig.subplots(1, 3)
    _panel(axes[0], image, "image")
    _panel(axes[1], overlay(image, gray), f"{explanation.method} overlay")
    _panel(axes[2], colorize(gray), explanation.method)
    return _finish(fig, title or _title(explanation, i), path)


def _finish(fig: Any, title: str, path: str | os.PathLike | None) -> Any:
    """Title, research-use notice, optional save: the end of every figure."""
    fig.suptitle(title, fontsize=10)
    _notice(fig)
    if path is not None:
        save_figure(fig, path)
    return fig


def plot_paper_figure(
    integrated_gradients: Explanation,
    gradient: Explanation,
    index: int = 0,
    *,
    clip_percentile: float = 99.0,
    path: str | os.PathLike | None = None,
    title: str | None = None,
) -> Any:
    """The paper's Fig. 2 row: image, gradient overlay, IG overlay, gradient, IG.

    Args:
        integrated_gradients: ``explain(..., method='integrated_gradients')``.
        gradient: ``explain(..., method='saliency')`` of the same images.
        index: Which image of the batch.
        clip_percentile: Display clipping (the paper: 99).
        path: Also save the figure there (PNG, PDF or SVG).
        title: Figure title; default: explained class and probability.
    """
    if gradient.image.shape != integrated_gradients.image.shape:
        raise ValueError(
            f"the two explanations show different images (shapes {gradient.image.shape} and "
            f"{integrated_gradients.image.shape}); pass a gradient explanation of the same batch."
        )
    i = _check_index(integrated_gradients, index)
    image = integrated_gradients.image[i]
    g = attribution_to_gray(gradient.attributions[i], polarity="abs", clip_percentile=clip_percentile)
    ig = attribution_to_gray(
        integrated_gradients.attributions[i], polarity="positive", clip_percentile=clip_percentile
    )
    fig = _figure(12.5, 3.0)
    axes = fig.subplots(1, 5)
    _panel(axes[0], image, "image")
    _panel(axes[1], overlay(image, g), "gradient overlay")
    _panel(axes[2], overlay(image, ig), "integrated gradients overlay")
    _panel(axes[3], colorize(g), "gradient")
    _panel(axes[4], colorize(ig), "integrated gradients")
    return _finish(fig, title or _title(integrated_gradients, i), path)


def plot_comparison(
    explanations: Mapping[str, Explanation],
    index: int = 0,
    *,
    polarity: Literal["positive", "negative", "abs"] | None = None,
    clip_percentile: float = 99.0,
    captions: Mapping[str, str] | None = None,
    path: str | os.PathLike | None = None,
    title: str | None = None,
) -> Any:
    """The same image explained several ways (models or methods), side by side: the image, then
    one overlay per explanation, e.g. an attention model and its backbone.

    Args:
        explanations: ``{panel title: Explanation}``, all of the same images.
        index: Which image of the batch.
        polarity: See :func:`attribution_to_gray`; default per method.
        clip_percentile: See :func:`attribution_to_gray`.
        captions: Optional second title line per panel (e.g. a faithfulness number).
        path: Also save the figure there (PNG, PDF or SVG).
        title: Figure title; default: the explained class.
    """
    if not explanations:
        raise ValueError("explanations is empty; pass {title: Explanation} for at least one explanation.")
    items = list(explanations.items())
    first = items[0][1]
    for name, e in items:
        if e.attributions is None:
            raise ValueError(f"explanation {name!r} ({e.method}) has no spatial map; use a spatial method.")
        if e.image.shape != first.image.shape or not np.array_equal(e.image[index], first.image[index]):
            raise ValueError(
                f"explanation {name!r} shows another image than {items[0][0]!r}; explain the same input "
                "with every model (same size and preprocessing)."
            )
    i = _check_index(first, index)
    image = first.image[i]
    h, w = image.shape[:2]
    panel = 3.0
    fig = _figure(panel * (len(items) + 1) * max(w / h, 0.5), panel + 0.6)
    axes = fig.subplots(1, len(items) + 1)
    _panel(axes[0], image, "image")
    for ax, (name, e) in zip(axes[1:], items):
        gray = attribution_to_gray(e.attributions[i], polarity=polarity or _default_polarity(e.method),
                                   clip_percentile=clip_percentile)
        caption = (captions or {}).get(name)
        _panel(ax, overlay(image, gray), name + (f"\n{caption}" if caption else ""))
    return _finish(fig, title or f"explained class: {first.labels[i]}", path)


def plot_channel_attention(
    explanation: Explanation, index: int = 0, *, path: str | os.PathLike | None = None
) -> Any:
    """Bar charts of the channel-attention weights of each layer, for one image."""
    if not explanation.attention:
        raise ValueError(
            f"this {explanation.method!r} explanation has no attention weights; use "
            "explain(model, image, method='channel_attention') with an RCAN model."
        )
    i = _check_index(explanation, index)
    names = [n for n, v in explanation.attention.items() if v.ndim == 2]
    fig = _figure(7.5, 1.9 * max(1, len(names)) + 0.6)
    axes = np.atleast_1d(fig.subplots(max(1, len(names)), 1, squeeze=False)[:, 0])
    for ax, name in zip(axes, names):
        w = explanation.attention[name][i]
        ax.bar(np.arange(w.size), w, width=1.0, color="tab:green")
        ax.set_ylim(0, 1)
        ax.set_xlim(-0.5, w.size - 0.5)
        ax.set_title(name, fontsize=8)
        ax.set_ylabel("weight", fontsize=8)
    axes[-1].set_xlabel("channel", fontsize=8)
    fig.suptitle(_title(explanation, i), fontsize=10)
    fig.tight_layout()
    _notice(fig)
    if path is not None:
        save_figure(fig, path)
    return fig
