"""Evaluation metrics for cell classification, in numpy only.

Accuracy, per-class precision/recall/F1, the support-weighted F1 of the seed paper (Eq. 1:
``F1_w = sum_c n_c F1_c / N``), macro F1 and the confusion matrix; percentile-bootstrap confidence
intervals (Efron & Tibshirani, 1993); a paired comparison of two models on the same samples (exact
McNemar test, McNemar 1947); field-level accuracy for SIPaKMeD, whose cells inherit the
class of the field image they were cut from; and a markdown table in the layout of the seed
paper's Table II. Rendering the confusion matrix lives in :mod:`cervattn.viz_metrics`.

Zero division: a class never predicted has precision 0.0, a class absent from ``y_true`` has
recall 0.0, and F1 is 0.0 when precision + recall is 0 (as scikit-learn's ``zero_division=0``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from cervattn.constants import SIPAKMED_CLASSES
from cervattn.viz_metrics import confusion_matrix_figure

__all__ = [
    "accuracy",
    "add_bootstrap_ci",
    "bootstrap_ci",
    "classification_report",
    "confusion_matrix",
    "confusion_matrix_figure",
    "field_level_accuracy",
    "macro_f1",
    "markdown_table",
    "paired_comparison",
    "weighted_f1",
]


def _labels(y: Any, name: str, num_classes: int | None = None, allow_scores: bool = False) -> np.ndarray:
    arr = np.asarray(y)
    if allow_scores and arr.ndim == 2:
        arr = arr.argmax(axis=1)
    if arr.ndim != 1:
        accepted = "a 1-D array of class indices" + (
            " or a 2-D (n, classes) score array" if allow_scores else ""
        )
        raise ValueError(f"{name} has shape {arr.shape}; expected {accepted}.")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not (np.issubdtype(arr.dtype, np.floating) and np.all(arr == np.round(arr))):
            raise ValueError(f"{name} must hold integer class indices; got dtype {arr.dtype}.")
        arr = arr.astype(np.int64)
    if num_classes is not None and arr.size and (arr.min() < 0 or arr.max() >= num_classes):
        raise ValueError(
            f"{name} holds class index {int(arr.min() if arr.min() < 0 else arr.max())}, outside "
            f"0..{num_classes - 1}; pass num_classes matching your model or fix the labels."
        )
    return arr.astype(np.int64)


def _pair(y_true, y_pred, num_classes: int | None) -> tuple[np.ndarray, np.ndarray]:
    t = _labels(y_true, "y_true", num_classes)
    p = _labels(y_pred, "y_pred", num_classes, allow_scores=True)
    if len(t) != len(p):
        raise ValueError(
            f"y_true has {len(t)} samples but y_pred has {len(p)}; pass one prediction per sample."
        )
    return t, p


def confusion_matrix(y_true, y_pred, num_classes: int = 5) -> np.ndarray:
    """Confusion matrix ``(num_classes, num_classes)``: rows are true classes, columns predictions.

    ``y_pred`` may be class indices or an ``(n, num_classes)`` score array (argmax is taken).
    """
    t, p = _pair(y_true, y_pred, num_classes)
    return np.bincount(t * num_classes + p, minlength=num_classes**2).reshape(num_classes, num_classes)


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den != 0)


def _scores(cm: np.ndarray) -> dict[str, np.ndarray]:
    """All metrics from confusion matrices of shape ``(..., K, K)``, vectorised over leading dims."""
    cm = cm.astype(np.float64)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    support, predicted = cm.sum(-1), cm.sum(-2)
    n = support.sum(-1)
    precision, recall = _div(tp, predicted), _div(tp, support)
    f1 = _div(2 * precision * recall, precision + recall)
    weights = _div(support, n[..., None])
    return {
        "accuracy": _div(tp.sum(-1), n),
        "weighted_f1": (f1 * weights).sum(-1),
        "macro_f1": f1.mean(-1),
        "weighted_precision": (precision * weights).sum(-1),
        "weighted_recall": (recall * weights).sum(-1),
        "macro_precision": precision.mean(-1),
        "macro_recall": recall.mean(-1),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "support": support,
    }


def accuracy(y_true, y_pred) -> float:
    """Fraction of samples whose prediction equals the label."""
    t, p = _pair(y_true, y_pred, None)
    return float((t == p).mean()) if len(t) else 0.0


def weighted_f1(y_true, y_pred, num_classes: int = 5) -> float:
    """Per-class F1 weighted by class support (the seed paper's Eq. 1)."""
    return float(_scores(confusion_matrix(y_true, y_pred, num_classes))["weighted_f1"])


def macro_f1(y_true, y_pred, num_classes: int = 5) -> float:
    """Unweighted mean of the per-class F1 scores (a class absent from both counts as 0.0)."""
    return float(_scores(confusion_matrix(y_true, y_pred, num_classes))["macro_f1"])


def _class_names(num_classes: int, class_names: Sequence[str] | None) -> list[str]:
    if class_names is None:
        return [str(i) for i in range(num_classes)]
    if len(class_names) != num_classes:
        raise ValueError(
            f"class_names has {len(class_names)} names but num_classes={num_classes}; pass one name per "
            "class, or class_names=None for '0', '1', ..."
        )
    return list(class_names)


def classification_report(
    y_true,
    y_pred,
    num_classes: int = 5,
    class_names: Sequence[str] | None = SIPAKMED_CLASSES,
) -> dict[str, Any]:
    """Accuracy, weighted and macro F1, per-class scores and the confusion matrix.

    Args:
        y_true: True class indices, shape ``(n,)``.
        y_pred: Predicted class indices ``(n,)``, or scores ``(n, num_classes)`` (argmax is taken).
        num_classes: Number of classes.
        class_names: One name per class (default: ``SIPAKMED_CLASSES``); ``None`` for "0", "1", ...

    Returns:
        A JSON-ready dict: ``n``, ``class_names``, ``accuracy``, ``weighted_f1`` (Eq. 1 of the seed
        paper), ``macro_f1``, ``weighted_precision``, ``weighted_recall``, ``macro_precision``,
        ``macro_recall``, ``per_class`` (``{name: {precision, recall, f1, support}}``) and
        ``confusion_matrix`` (list of rows; rows true, columns predicted). Values are fractions in
        0..1; zero divisions give 0.0.

    Examples:
        >>> r = classification_report([0, 1, 2, 2], [0, 2, 2, 2], num_classes=3, class_names=None)
        >>> r["accuracy"], r["per_class"]["2"]["precision"]
        (0.75, 0.6666666666666666)
    """
    names = _class_names(num_classes, class_names)
    cm = confusion_matrix(y_true, y_pred, num_classes)
    s = _scores(cm)
    report: dict[str, Any] = {"n": int(cm.sum()), "class_names": names}
    for key in ("accuracy", "weighted_f1", "macro_f1", "weighted_precision", "weighted_recall",
                "macro_precision", "macro_recall"):  # fmt: skip
        report[key] = float(s[key])
    report["per_class"] = {
        name: {
            "precision": float(s["precision"][i]),
            "recall": float(s["recall"][i]),
            "f1": float(s["f1"][i]),
            "support": int(s["support"][i]),
        }
        for i, name in enumerate(names)
    }
    report["confusion_matrix"] = cm.tolist()
    return report


def _resample_indices(n: int, n_boot: int, seed: int) -> np.ndarray:
    if n < 1:
        raise ValueError("Bootstrap needs at least one sample; y_true is empty.")
    if not isinstance(n_boot, int) or n_boot < 1:
        raise ValueError(f"n_boot={n_boot!r} is not accepted: give a positive int such as 1000.")
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def _check_alpha(alpha: float) -> tuple[float, float]:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha={alpha!r} is not accepted: give a value in (0, 1), e.g. 0.05 for 95% CIs.")
    return 100 * alpha / 2, 100 * (1 - alpha / 2)


def bootstrap_ci(
    y_true,
    y_pred,
    metric_fn: Callable[[np.ndarray, np.ndarray], float],
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of ``metric_fn(y_true, y_pred)``.

    Samples are drawn with replacement ``n_boot`` times (numpy ``default_rng(seed)``, so the result
    is deterministic); the interval is the ``alpha/2`` and ``1 - alpha/2`` percentiles of the
    metric over the resamples. Resampling is of single samples: for SIPaKMeD cells, which are
    correlated within a field image, the interval is somewhat too narrow.

    Args:
        y_true: Labels, shape ``(n,)``.
        y_pred: Predictions or scores; rows are resampled together with ``y_true``.
        metric_fn: Called as ``metric_fn(y_true[idx], y_pred[idx])``, returns a float, e.g.
            :func:`accuracy` or :func:`weighted_f1`.
        n_boot: Number of resamples.
        alpha: 1 - confidence level (0.05 gives a 95% interval).
        seed: Seed of the resampling.

    Returns:
        ``(low, high)``.
    """
    t, p = np.asarray(y_true), np.asarray(y_pred)
    if len(t) != len(p):
        raise ValueError(
            f"y_true has {len(t)} samples but y_pred has {len(p)}; pass one prediction per sample."
        )
    q = _check_alpha(alpha)
    values = np.array([metric_fn(t[idx], p[idx]) for idx in _resample_indices(len(t), n_boot, seed)])
    low, high = np.percentile(values, q)
    return float(low), float(high)


def add_bootstrap_ci(
    report: Mapping[str, Any],
    y_true,
    y_pred,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, Any]:
    """Return a copy of ``report`` with percentile-bootstrap CIs under the key ``"ci"``.

    ``report["ci"]`` holds ``[low, high]`` for ``accuracy``, ``weighted_f1`` and ``macro_f1``,
    ``per_class_f1`` (``{name: [low, high]}``), and ``n_boot``, ``alpha``, ``seed``. The resamples
    are the same as :func:`bootstrap_ci` draws with the same ``n_boot`` and ``seed``, so
    ``bootstrap_ci(y_true, y_pred, accuracy)`` equals ``report["ci"]["accuracy"]``.

    Args:
        report: From :func:`classification_report` on the same ``y_true`` and ``y_pred``.
        y_true, y_pred: As in :func:`classification_report`.
        n_boot, alpha, seed: As in :func:`bootstrap_ci`.
    """
    names = list(report["class_names"])
    k = len(names)
    t, p = _pair(y_true, y_pred, k)
    if len(t) != report["n"]:
        raise ValueError(
            f"report was computed on {report['n']} samples but y_true has {len(t)}; pass the same data."
        )
    q = _check_alpha(alpha)
    idx = _resample_indices(len(t), n_boot, seed)
    flat = (np.arange(n_boot)[:, None] * k * k + t[idx] * k + p[idx]).ravel()
    cms = np.bincount(flat, minlength=n_boot * k * k).reshape(n_boot, k, k)
    s = _scores(cms)

    def interval(values: np.ndarray) -> list[float]:
        return [float(v) for v in np.percentile(values, q, axis=0)]

    out = dict(report)
    out["ci"] = {
        "accuracy": interval(s["accuracy"]),
        "weighted_f1": interval(s["weighted_f1"]),
        "macro_f1": interval(s["macro_f1"]),
        "per_class_f1": {name: interval(s["f1"][:, i]) for i, name in enumerate(names)},
        "n_boot": n_boot,
        "alpha": alpha,
        "seed": seed,
    }
    return out


def field_level_accuracy(
    fields, labels, probs_or_preds, num_classes: int | None = None
) -> dict[str, float | int]:
    """Accuracy over SIPaKMeD field images, from the predictions for their cells.

    All cells cut from one field image share its class, so cells are grouped by ``(label,
    field)`` (field ids repeat across classes; ``dataset.groups`` works as ``fields`` too). A field's
    prediction is the argmax of the mean class probability over its cells. With hard predictions,
    the mean of one-hot vectors is used, i.e. a majority vote with ties going to the lower class
    index.

    Args:
        fields: Field id of each cell, e.g. ``dataset.fields``.
        labels: True class index of each cell.
        probs_or_preds: Softmax probabilities ``(n, num_classes)`` or class indices ``(n,)``.
        num_classes: Needed only for class indices when some class is never predicted; default
            ``max + 1`` of labels and predictions.

    Returns:
        ``{"accuracy": float, "n_fields": int, "n_correct": int}``.

    Raises:
        ValueError: Lengths differ, or 2-D scores are not probabilities (negative or rows not
            summing to 1: apply ``softmax`` to logits first).
    """
    fields = np.asarray(fields).astype(str)
    y = _labels(labels, "labels")
    scores = np.asarray(probs_or_preds, dtype=np.float64)
    if not len(fields) == len(y) == len(scores):
        raise ValueError(
            f"fields, labels and probs_or_preds must have one entry per cell; got {len(fields)}, {len(y)} "
            f"and {len(scores)}."
        )
    if scores.ndim == 2:
        if scores.size and ((scores < 0).any() or not np.allclose(scores.sum(1), 1.0, atol=1e-3)):
            raise ValueError(
                "probs_or_preds looks like logits (negative values or rows not summing to 1); pass "
                "probabilities, e.g. torch.softmax(logits, dim=1), or predicted class indices."
            )
        probs = scores
    else:
        preds = _labels(probs_or_preds, "probs_or_preds")
        k = num_classes or int(max(preds.max(initial=0), y.max(initial=0)) + 1)
        probs = np.eye(k)[_labels(preds, "probs_or_preds", k)]
    _, group = np.unique(np.char.add(np.char.add(y.astype(str), "/"), fields), return_inverse=True)
    n_groups = int(group.max(initial=-1) + 1)
    sums = np.zeros((n_groups, probs.shape[1]))
    np.add.at(sums, group, probs)
    group_label = np.zeros(n_groups, dtype=np.int64)
    group_label[group] = y
    correct = int((sums.argmax(1) == group_label).sum()) if n_groups else 0
    return {"accuracy": correct / n_groups if n_groups else 0.0, "n_fields": n_groups, "n_correct": correct}


def paired_comparison(
    y_true, pred_a, pred_b, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0
) -> dict[str, float | int | tuple[float, float]]:
    """Compare the accuracy of two models on the same samples, pairing their predictions per sample.

    Two models evaluated on the same cells are not independent samples, so their separate
    confidence intervals overlap even when one is reliably better. This counts the samples that only
    one model gets right and tests them with the exact (binomial) two-sided McNemar test, and gives a
    paired percentile-bootstrap interval of the accuracy difference (samples resampled together).

    Args:
        y_true: Labels, shape ``(n,)``.
        pred_a: Predictions of model A: class indices ``(n,)`` or scores ``(n, classes)``, in the
            same sample order as ``y_true`` (e.g. ``result.preds`` of :func:`cervattn.evaluate.evaluate`
            on the same dataset).
        pred_b: Predictions of model B, same forms.
        n_boot: Bootstrap resamples for the interval of the difference.
        alpha: 1 - confidence level (0.05 gives a 95% interval).
        seed: Seed of the resampling.

    Returns:
        ``{"n", "accuracy_a", "accuracy_b", "difference" (a - b), "difference_ci" (low, high),
        "only_a" (right only with A), "only_b", "p_value"}``; ``p_value`` is 1.0 when no sample
        is discordant.

    Raises:
        ValueError: Shapes or lengths differ, or predictions are not class indices or scores.

    Example:
        >>> paired_comparison([0, 1, 1, 2], [0, 1, 1, 2], [0, 1, 0, 0])["only_a"]
        2
    """
    t = _labels(y_true, "y_true")
    a = _labels(pred_a, "pred_a", allow_scores=True)
    b = _labels(pred_b, "pred_b", allow_scores=True)
    if not len(t) == len(a) == len(b):
        raise ValueError(
            f"y_true, pred_a and pred_b must have one entry per sample; got {len(t)}, {len(a)} and {len(b)}. "
            "Evaluate both models on the same dataset, in the same order."
        )
    right_a, right_b = a == t, b == t
    only_a, only_b = int((right_a & ~right_b).sum()), int((right_b & ~right_a).sum())
    diff = right_a.astype(np.float64) - right_b.astype(np.float64)
    q = _check_alpha(alpha)
    boot = diff[_resample_indices(len(t), n_boot, seed)].mean(axis=1)
    low, high = np.percentile(boot, q)
    return {
        "n": len(t),
        "accuracy_a": float(right_a.mean()),
        "accuracy_b": float(right_b.mean()),
        "difference": float(diff.mean()),
        "difference_ci": (float(low), float(high)),
        "only_a": only_a,
        "only_b": only_b,
        "p_value": _mcnemar_exact(only_a, only_b),
    }


def _mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value: binomial(n_discordant, 1/2) tail at the smaller count, doubled."""
    n, k = only_a + only_b, min(only_a, only_b)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n  # exact integers: no overflow for large n
    return float(min(1.0, 2.0 * tail))


_ROWS = (("accuracy", "Accuracy"), ("weighted_f1", "Weighted F1"), ("macro_f1", "Macro F1"))


def markdown_table(
    reports: Mapping[str, Mapping[str, Any]],
    per_class: bool = True,
    percent: bool = True,
    digits: int = 1,
    bold_best: bool = False,
) -> str:
    """A Table II-style markdown table: one row per metric, one column per model.

    Args:
        reports: ``{model name: report}``, reports from :func:`classification_report` (with CIs
            from :func:`add_bootstrap_ci` when present, shown as ``value [low, high]``).
        per_class: Add one "F1 <class>" row per class.
        percent: Show values as percentages.
        digits: Decimals shown.
        bold_best: Bold the highest value of each row.

    Returns:
        The table as a markdown string (ending with a newline).

    Examples:
        >>> r1 = classification_report([0, 1, 2, 3, 4], [0, 1, 2, 3, 3])
        >>> r2 = classification_report([0, 1, 2, 3, 4], [0, 1, 2, 3, 4])
        >>> print(markdown_table({"ran_resnet50": r1, "rcan_densenet121": r2}).splitlines()[0])
        | Metric | ran_resnet50 | rcan_densenet121 |
    """
    if not reports:
        raise ValueError("reports is empty; pass {model name: classification_report(...)}.")
    names = list(next(iter(reports.values()))["class_names"])
    rows = list(_ROWS) + ([(("per_class", n), f"F1 {n}") for n in names] if per_class else [])
    scale = 100.0 if percent else 1.0

    def cell(report: Mapping[str, Any], key) -> tuple[float, str]:
        ci = report.get("ci", {})
        if isinstance(key, tuple):
            value, interval = report["per_class"][key[1]]["f1"], ci.get("per_class_f1", {}).get(key[1])
        else:
            value, interval = report[key], ci.get(key)
        text = f"{value * scale:.{digits}f}"
        if interval is not None:
            text += f" [{interval[0] * scale:.{digits}f}, {interval[1] * scale:.{digits}f}]"
        return value, text

    lines = ["| Metric | " + " | ".join(reports) + " |", "|---|" + "---|" * len(reports)]
    for key, label in rows:
        cells = [cell(r, key) for r in reports.values()]
        best = max(v for v, _ in cells)
        texts = [f"**{t}**" if bold_best and v == best else t for v, t in cells]
        lines.append(f"| {label} | " + " | ".join(texts) + " |")
    return "\n".join(lines) + "\n"
