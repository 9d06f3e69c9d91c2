"""Faithfulness checks for explanations: deletion / insertion, model randomisation, cell share.

* Deletion and insertion curves (V. Petsiuk, A. Das, K. Saenko, "RISE: Randomized Input
  Sampling for Explanation of Black-box Models", BMVC 2018, arXiv:1806.07421): pixels are
  removed (deletion) or revealed (insertion) most-attributed first, in ``n_steps`` equal
  steps, and the target's softmax probability is recorded. Removed / not yet revealed pixels
  take the **replacement** value, by default a Gaussian blur of the image (sigma = side / 16
  px), which keeps the slide's colour and avoids the out-of-distribution black holes of a zero
  fill; ``'black'``, ``'white'``, ``'mean'`` or a tensor (normalised space) are accepted too. The
  area under the curve (trapezoid over the fraction of pixels, in [0, 1]) is reported with the
  same curve for a random pixel order: a faithful map has deletion AUC below random and
  insertion AUC above random.
* Model-randomisation sanity check (J. Adebayo et al., "Sanity Checks for Saliency Maps",
  NeurIPS 2018, arXiv:1810.03292): re-initialise the weights of a copy of the model, cascading
  from the output layer down or all at once, and compare the maps by Spearman rank
  correlation. A map that explains the model, not the image, changes: the correlation should
  drop towards 0.
* Attribution share on cells: for multi-cell field images, the share of positive attribution
  that falls on cells rather than on the blank bright slide. Background = pixels brighter than
  an Otsu threshold of the grayscale image (cells are darker than the slide), or a fixed
  brightness threshold.
* Concentration on few cells: the cell mask is split into cell regions (4-connected
  components; touching cells form one region) and the regions are ranked by the positive
  attribution they hold; the number of regions needed to hold 80 % of it measures whether a
  map points at a few cells or spreads over the field.

Research use only, not for clinical diagnosis.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from . import attribution_methods as am
from .explanations import Explanation, _preprocessing, explain

__all__ = [
    "PerturbationCurve",
    "perturbation_curve",
    "deletion_curve",
    "insertion_curve",
    "RandomizationResult",
    "randomization_check",
    "CellShare",
    "cell_attribution_share",
    "CellConcentration",
    "cell_concentration",
    "label_regions",
    "otsu_threshold",
    "spearman",
]


@dataclass
class PerturbationCurve:
    """A deletion or insertion curve per image.

    Attributes:
        kind: ``'deletion'`` or ``'insertion'``.
        fractions: ``(S + 1,)`` fraction of pixels removed (deletion) or revealed (insertion).
        scores: ``(N, S + 1)`` target score along the curve (softmax probability by default).
        auc: ``(N,)`` area under ``scores`` over ``fractions``.
        random_scores: ``(N, S + 1)`` the same for a random pixel order (mean over orders).
        random_auc: ``(N,)``.
        replacement: What removed pixels were replaced with.
    """

    kind: str
    fractions: np.ndarray
    scores: np.ndarray
    auc: np.ndarray
    random_scores: np.ndarray | None
    random_auc: np.ndarray | None
    replacement: str

    @property
    def better_than_random(self) -> np.ndarray | None:
        """``(N,)`` bool: deletion AUC below random, or insertion AUC above random."""
        if self.random_auc is None:
            return None
        return self.auc < self.random_auc if self.kind == "deletion" else self.auc > self.random_auc


def _auc(fractions: np.ndarray, scores: np.ndarray) -> np.ndarray:
    return ((scores[:, 1:] + scores[:, :-1]) / 2 * np.diff(fractions)).sum(1)


def _order(saliency: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Pixel indices, most salient first; ties in random order (flat Grad-CAM regions)."""
    flat = saliency.reshape(-1)
    return np.lexsort((rng.random(flat.size), -flat))


def _scores(model, x: torch.Tensor, target: torch.Tensor, output: str, batch_size: int) -> torch.Tensor:
    fn = am.make_forward(model, output)
    with torch.no_grad():
        out = torch.cat([fn(x[i : i + batch_size]) for i in range(0, x.shape[0], batch_size)])
    return out.float().gather(1, target.view(-1, 1))[:, 0]


def perturbation_curve(
    model: nn.Module,
    inputs: torch.Tensor | np.ndarray,
    saliency: np.ndarray,
    target: np.ndarray | torch.Tensor | list[int],
    *,
    kind: Literal["deletion", "insertion"] = "deletion",
    n_steps: int = 16,
    replacement: str | torch.Tensor = "blurred",
    output: Literal["softmax", "logit", "log_softmax"] = "softmax",
    random_orders: int = 1,
    batch_size: int = 16,
    seed: int = 0,
    blur_sigma: float | None = None,
) -> PerturbationCurve:
    """Deletion or insertion curve of normalised inputs ranked by a per-pixel saliency map.

    Args:
        model: The classifier; left as it was (mode, ``requires_grad``).
        inputs: ``(N, C, H, W)`` normalised model input (``Explanation.inputs``).
        saliency: ``(N, H, W)`` ranking map: higher = removed / revealed earlier.
        target: ``(N,)`` class index per image.
        kind: ``'deletion'`` or ``'insertion'``.
        n_steps: Number of equal pixel-fraction steps (``n_steps + 1`` forward passes per image
            and order).
        replacement: ``'blurred'`` (default), ``'black'``, ``'white'``, ``'mean'`` or a tensor in
            normalised space; see the module docs.
        output: Score recorded: ``'softmax'`` probability (default, in [0, 1]), ``'logit'``,
            ``'log_softmax'``.
        random_orders: Random pixel orders averaged for the random reference (0: none).
        batch_size: Images per forward pass.
        seed: Seeds tie breaking and the random orders.
        blur_sigma: Sigma of the ``'blurred'`` replacement in pixels (default side / 16).
    """
    if kind not in ("deletion", "insertion"):
        raise ValueError(f"kind={kind!r}; accepted: 'deletion', 'insertion'.")
    if not isinstance(n_steps, int) or n_steps < 1:
        raise ValueError(f"n_steps must be a positive int, got {n_steps!r}.")
    x = torch.as_tensor(np.asarray(inputs) if not isinstance(inputs, torch.Tensor) else inputs).float()
    saliency = np.asarray(saliency, dtype=np.float64)
    if x.dim() != 4 or saliency.shape != (x.shape[0], *x.shape[-2:]):
        raise ValueError(
            f"inputs {tuple(x.shape)} and saliency {saliency.shape} do not match; accepted: inputs "
            "(N, C, H, W) and saliency (N, H, W), e.g. Explanation.inputs and Explanation.attribution_map."
        )
    param = next(model.parameters(), None)
    if param is not None:
        x = x.to(device=param.device, dtype=param.dtype)
    tgt = torch.as_tensor(np.asarray(target), dtype=torch.long, device=x.device).view(-1)
    prep = _preprocessing(model)
    repl = am.make_baselines(replacement, x, prep.mean, prep.std, blur_sigma=blur_sigma)
    n, _, h, w = x.shape
    counts = np.round(np.linspace(0, h * w, n_steps + 1)).astype(int)
    fractions = counts / (h * w)
    rng = np.random.default_rng(seed)

    def curve(orders: list[np.ndarray]) -> np.ndarray:
        out = np.empty((n, n_steps + 1))
        for i in range(n):
            # rank[p] = position of pixel p in the order; pixel p is perturbed at step k if rank < count_k.
            rank = np.empty(h * w, dtype=np.int64)
            rank[orders[i]] = np.arange(h * w)
            mask = torch.from_numpy(rank[None, :] < counts[:, None]).view(n_steps + 1, 1, h, w).to(x.device)
            src, dst = (repl[i], x[i]) if kind == "deletion" else (x[i], repl[i])
            batch = torch.where(mask, src.unsqueeze(0), dst.unsqueeze(0))
            out[i] = _scores(model, batch, tgt[i].repeat(n_steps + 1), output, batch_size).cpu().numpy()
        return out

    with am.prepared_model(model):
        scores = curve([_order(saliency[i], rng) for i in range(n)])
        random_scores = None
        if random_orders > 0:
            random_scores = np.mean(
                [curve([rng.permutation(h * w) for _ in range(n)]) for _ in range(random_orders)], axis=0
            )
    return PerturbationCurve(
        kind=kind,
        fractions=fractions,
        scores=scores,
        auc=_auc(fractions, scores),
        random_scores=random_scores,
        random_auc=None if random_scores is None else _auc(fractions, random_scores),
        replacement=replacement if isinstance(replacement, str) else "tensor",
    )


def ranking_map(explanation: Explanation, rank_by: Literal["auto", "signed", "abs"] = "auto") -> np.ndarray:
    """``(N, H, W)`` map used to order pixels: the signed channel sum (positive evidence first),
    or its magnitude; ``'auto'`` uses magnitude for saliency and SmoothGrad (sign-less
    gradients), the signed sum otherwise."""
    if rank_by == "auto":
        rank_by = "abs" if explanation.method in ("saliency", "smoothgrad") else "signed"
    if rank_by == "abs":
        if explanation.attributions is None:
            _ = explanation.attribution_map  # raises the documented ValueError
        return np.abs(explanation.attributions).sum(1)
    if rank_by == "signed":
        return explanation.attribution_map
    raise ValueError(f"rank_by={rank_by!r}; accepted: 'auto', 'signed', 'abs'.")


def deletion_curve(
    model: nn.Module, explanation: Explanation, *, rank_by: str = "auto", **kwargs: Any
) -> PerturbationCurve:
    """Deletion curve of an :class:`Explanation` (see :func:`perturbation_curve` for options)."""
    return perturbation_curve(
        model, explanation.inputs, ranking_map(explanation, rank_by), explanation.target, kind="deletion", **kwargs
    )


def insertion_curve(
    model: nn.Module, explanation: Explanation, *, rank_by: str = "auto", **kwargs: Any
) -> PerturbationCurve:
    """Insertion curve of an :class:`Explanation` (see :func:`perturbation_curve` for options)."""
    return perturbation_curve(
        model, explanation.inputs, ranking_map(explanation, rank_by), explanation.target, kind="insertion", **kwargs
    )


# ---------------------------------------------------------------------------------------------
# Model randomisation


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two arrays (average ranks for ties); 0 if one is constant."""
    ra, rb = _rankdata(np.ravel(a)), _rankdata(np.ravel(b))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = np.sqrt((ra**2).sum() * (rb**2).sum())
    return float((ra * rb).sum() / denom) if denom > 0 else 0.0


def _rankdata(a: np.ndarray) -> np.ndarray:
    order = np.argsort(a, kind="stable")
    ranks = np.empty(a.size, dtype=np.float64)
    ranks[order] = np.arange(a.size, dtype=np.float64)
    # Average the ranks of tied values.
    _, inverse, counts = np.unique(a, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return (sums / counts)[inverse]


@dataclass
class RandomizationResult:
    """Model-randomisation sanity check.

    Attributes:
        mode: ``'cascading'`` or ``'full'``.
        steps: Per step, the modules re-initialised up to then (cascading: output side first).
        fraction: ``(S,)`` fraction of parameterised modules re-initialised at each step.
        spearman: ``(S, N)`` rank correlation of the signed maps, original vs randomised.
        spearman_abs: ``(S, N)`` the same for the absolute maps.
        original: The explanation of the original model.
    """

    mode: str
    steps: list[str]
    fraction: np.ndarray
    spearman: np.ndarray
    spearman_abs: np.ndarray
    original: Explanation


def _reinit(module: nn.Module) -> None:
    if hasattr(module, "reset_parameters"):
        module.reset_parameters()
        return
    for p in module.parameters(recurse=False):
        if p.dim() >= 2:
            nn.init.kaiming_uniform_(p, a=5**0.5)
        else:
            nn.init.normal_(p)


def randomization_check(
    model: nn.Module,
    image: Any,
    *,
    method: str = "integrated_gradients",
    mode: Literal["cascading", "full"] = "cascading",
    n_blocks: int = 4,
    seed: int = 0,
    **explain_kwargs: Any,
) -> RandomizationResult:
    """Compare explanations of ``model`` and of copies with re-initialised weights.

    The caller's model is never modified (a deep copy is randomised). ``mode='cascading'``
    re-initialises the parameterised modules from the output side down, in ``n_blocks``
    equal groups, and explains after each group; ``mode='full'`` re-initialises everything
    at once. The same targets as the original explanation are attributed.

    Args:
        model: The trained classifier.
        image: Anything :func:`cervattn.explain` accepts.
        method: The attribution method checked.
        mode: ``'cascading'`` or ``'full'``.
        n_blocks: Cascading steps.
        seed: Seeds the re-initialisation; the caller's RNG state is untouched.
        **explain_kwargs: Passed to :func:`cervattn.explain` (``n_steps`` etc.).
    """
    if mode not in ("cascading", "full"):
        raise ValueError(f"mode={mode!r}; accepted: 'cascading', 'full'.")
    original = explain(model, image, method=method, **explain_kwargs)
    if original.attributions is None:
        raise ValueError(
            f"method={method!r} has no spatial map to compare; use a spatial method such as "
            "'integrated_gradients', 'saliency', 'smoothgrad' or 'gradcam'."
        )
    inputs = torch.from_numpy(original.inputs)
    target = original.target.tolist()
    rand = copy.deepcopy(model)
    modules = [(n, m) for n, m in rand.named_modules() if any(True for _ in m.parameters(recurse=False))]
    modules.reverse()
    if mode == "full":
        groups = [modules]
    else:
        k = max(1, min(n_blocks, len(modules)))
        bounds = np.linspace(0, len(modules), k + 1).round().astype(int)
        groups = [modules[bounds[i] : bounds[i + 1]] for i in range(k)]
    ref = original.attributions
    steps, fractions, rho, rho_abs = [], [], [], []
    done = 0
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for group in groups:
            for _, m in group:
                _reinit(m)
            done += len(group)
            e = explain(rand, inputs, method=method, target=target, **explain_kwargs)
            steps.append(f"{group[0][0] or '<root>'} .. {group[-1][0] or '<root>'}")
            fractions.append(done / len(modules))
            rho.append([spearman(ref[i].sum(0), e.attributions[i].sum(0)) for i in range(len(e))])
            rho_abs.append([spearman(np.abs(ref[i]).sum(0), np.abs(e.attributions[i]).sum(0))
                            for i in range(len(e))])
    return RandomizationResult(
        mode=mode,
        steps=steps,
        fraction=np.asarray(fractions),
        spearman=np.asarray(rho),
        spearman_abs=np.asarray(rho_abs),
        original=original,
    )


# ---------------------------------------------------------------------------------------------
# Cells vs background


def otsu_threshold(gray: np.ndarray) -> float:
    """Otsu's threshold of a uint8 grayscale image (maximises the between-class variance)."""
    hist = np.bincount(np.asarray(gray, dtype=np.uint8).ravel(), minlength=256).astype(np.float64)
    p = hist / max(hist.sum(), 1.0)
    omega = np.cumsum(p)
    mu = np.cumsum(p * np.arange(256))
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mu[-1] * omega - mu) ** 2 / (omega * (1.0 - omega))
    between = np.nan_to_num(between, nan=-1.0, posinf=-1.0)
    return float(np.argmax(between))


@dataclass
class CellShare:
    """Share of attribution on cells.

    Attributes:
        share: ``(N,)`` fraction of the attribution mass on cell pixels.
        cell_fraction: ``(N,)`` fraction of pixels that are cells (what a uniform map would get).
        threshold: ``(N,)`` gray level above which a pixel is background.
        cell_mask: ``(N, H, W)`` bool, True on cells.
    """

    share: np.ndarray
    cell_fraction: np.ndarray
    threshold: np.ndarray
    cell_mask: np.ndarray

    @property
    def enrichment(self) -> np.ndarray:
        """``share / cell_fraction``: above 1 when attribution concentrates on cells."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.share / self.cell_fraction


def cell_attribution_share(
    explanation: Explanation,
    *,
    threshold: Literal["otsu"] | float = "otsu",
    polarity: Literal["positive", "abs"] = "positive",
) -> CellShare:
    """Share of an explanation's attribution that lies on cells rather than the bright slide.

    Args:
        explanation: From :func:`cervattn.explain`; its ``image`` gives the cell mask.
        threshold: ``'otsu'`` (per image, on the luma of the image) or a gray level 0-255:
            pixels brighter than it are background.
        polarity: ``'positive'`` mass of the per-pixel map (evidence for the class) or ``'abs'``.
    """
    cells, mass, thr = _cell_mask_and_mass(explanation, threshold, polarity)
    total = mass.sum((1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(total > 0, (mass * cells).sum((1, 2)) / total, np.nan)
    return CellShare(share=share, cell_fraction=cells.mean((1, 2)), threshold=thr, cell_mask=cells)


def _cell_mask_and_mass(
    explanation: Explanation, threshold: Literal["otsu"] | float, polarity: Literal["positive", "abs"]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(cells, mass, thresholds)``: bool cell mask, attribution mass per pixel, gray threshold."""
    img = explanation.image.astype(np.float64)
    gray = np.clip(np.round(img @ np.array([0.299, 0.587, 0.114])), 0, 255).astype(np.uint8)
    if explanation.attributions is None:
        _ = explanation.attribution_map  # raises the documented ValueError
    if polarity == "positive":
        mass = np.clip(explanation.attributions.sum(1), 0, None)
    elif polarity == "abs":
        mass = np.abs(explanation.attributions).sum(1)
    else:
        raise ValueError(f"polarity={polarity!r}; accepted: 'positive', 'abs'.")
    if threshold == "otsu":
        thr = np.array([otsu_threshold(g) for g in gray])
    elif isinstance(threshold, (int, float)) and 0 <= threshold <= 255:
        thr = np.full(len(gray), float(threshold))
    else:
        raise ValueError(f"threshold={threshold!r}; accepted: 'otsu' or a gray level 0-255.")
    return gray <= thr[:, None, None], mass, thr


def label_regions(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """4-connected components of a 2-D bool mask: ``(labels, n)`` with labels 1..n, 0 outside.

    Min-label propagation with pointer jumping, in numpy (no SciPy dependency).
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (H, W), got shape {mask.shape}.")
    h, w = mask.shape
    big = h * w + 1
    lab = np.where(mask, np.arange(1, h * w + 1).reshape(h, w), big)
    while True:
        m = lab.copy()
        np.minimum(m[1:], lab[:-1], out=m[1:])
        np.minimum(m[:-1], lab[1:], out=m[:-1])
        np.minimum(m[:, 1:], lab[:, :-1], out=m[:, 1:])
        np.minimum(m[:, :-1], lab[:, 1:], out=m[:, :-1])
        m = np.where(mask, m, big)
        flat = m.reshape(-1)  # a view: the jump below updates m
        inside = flat < big
        flat[inside] = flat[flat[inside] - 1]  # pointer jumping: take the label of the label's pixel
        if np.array_equal(m, lab):
            break
        lab = m
    labels = np.zeros((h, w), dtype=np.int64)
    roots, inverse = np.unique(lab[mask], return_inverse=True)
    labels[mask] = inverse + 1
    return labels, len(roots)


@dataclass
class CellConcentration:
    """How many cell regions hold an explanation's attribution.

    Attributes:
        n_regions: ``(N,)`` cell regions (4-connected components of the cell mask of at least
            ``min_area`` pixels; touching cells form one region).
        regions_for_mass: ``(N,)`` fewest regions that hold ``mass`` of the attribution on
            regions (the most-attributed first); NaN when there is none.
        fraction_for_mass: ``(N,)`` ``regions_for_mass / n_regions``.
        top_region_share: ``(N,)`` share of the on-region attribution in the top region.
        mass: The mass level (default 0.8).
        labels: ``(N, H, W)`` region labels, 0 on background and on regions below ``min_area``.
    """

    n_regions: np.ndarray
    regions_for_mass: np.ndarray
    fraction_for_mass: np.ndarray
    top_region_share: np.ndarray
    mass: float
    labels: np.ndarray


def cell_concentration(
    explanation: Explanation,
    *,
    mass: float = 0.8,
    min_area: float = 0.001,
    threshold: Literal["otsu"] | float = "otsu",
    polarity: Literal["positive", "abs"] = "positive",
) -> CellConcentration:
    """Does a map point at a few cells? Count the cell regions that hold ``mass`` of its attribution.

    For multi-cell field images: the cell mask of :func:`cell_attribution_share` (Otsu or fixed
    threshold) is split into 4-connected regions; regions smaller than ``min_area`` (a fraction
    of the image, default 0.1 %: debris) are dropped; the regions are sorted by the attribution
    they hold and counted until ``mass`` of the total on regions is reached. Fewer regions =
    the explanation concentrates on fewer cells (touching cells count as one region).

    Args:
        explanation: From :func:`cervattn.explain`.
        mass: Share of the on-region attribution to account for, in (0, 1].
        min_area: Smallest region kept, as a fraction of the image's pixels, in [0, 1).
        threshold: ``'otsu'`` or a gray level 0-255 (see :func:`cell_attribution_share`).
        polarity: ``'positive'`` attribution (evidence for the class) or ``'abs'``.
    """
    if not 0 < mass <= 1:
        raise ValueError(f"mass={mass!r}; accepted: a share in (0, 1], e.g. 0.8.")
    if not 0 <= min_area < 1:
        raise ValueError(f"min_area={min_area!r}; accepted: a fraction of the image in [0, 1), e.g. 0.001.")
    cells, amass, _ = _cell_mask_and_mass(explanation, threshold, polarity)
    n = len(cells)
    n_regions = np.zeros(n, dtype=np.int64)
    needed = np.full(n, np.nan)
    top = np.full(n, np.nan)
    all_labels = np.zeros(cells.shape, dtype=np.int64)
    for i in range(n):
        labels, k = label_regions(cells[i])
        area = np.bincount(labels.ravel(), minlength=k + 1)
        keep = np.flatnonzero(area >= max(1, min_area * labels.size))
        keep = keep[keep > 0]
        relabel = np.zeros(k + 1, dtype=np.int64)
        relabel[keep] = np.arange(1, len(keep) + 1)
        labels = relabel[labels]
        all_labels[i] = labels
        n_regions[i] = len(keep)
        per_region = np.bincount(labels.ravel(), weights=amass[i].ravel(), minlength=len(keep) + 1)[1:]
        total = per_region.sum()
        if total <= 0:
            continue
        cum = np.cumsum(np.sort(per_region)[::-1]) / total
        needed[i] = int(np.searchsorted(cum, mass - 1e-12) + 1)
        top[i] = cum[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        fraction = np.where(n_regions > 0, needed / n_regions, np.nan)
    return CellConcentration(
        n_regions=n_regions,
        regions_for_mass=needed,
        fraction_for_mass=fraction,
        top_region_share=top,
        mass=mass,
        labels=all_labels,
    )
