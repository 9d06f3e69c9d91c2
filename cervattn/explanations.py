"""Explanations of cervattn predictions: integrated gradients (the paper's Fig. 2) and friends.

:func:`explain` turns images (paths, PIL images, arrays or preprocessed tensors) into an
:class:`Explanation`: attributions at the model's input resolution, the predicted and explained
classes, probabilities, the convergence delta of integrated gradients, and the input image for
plotting. :func:`explain_files` does the same for files and folders and writes figures plus a
JSON and a CSV of predictions (the ``cervattn explain`` command). The computing lives in
:mod:`cervattn.attribution_methods`, the rendering in :mod:`cervattn.viz`.

The paper this reproduces: R. Wang et al., "Towards Interpretable Attention Networks for
Cervical Cancer Analysis", EMBC 2021, arXiv:2106.00557 (Fig. 2: image, gradient and integrated
gradients overlays). Its exact integrated-gradients procedure is :data:`PAPER_IG`.

Research use only, not for clinical diagnosis.
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import json
import logging
import operator
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import attribution_methods as am
from .constants import RESEARCH_USE_NOTICE
from .data import IMAGE_EXTENSIONS
from .predict import expand_images

__all__ = ["explain", "explain_files", "Explanation", "load_explanation", "PAPER_IG"]

_logger = logging.getLogger(__name__)

#: Smallest accepted image side, in pixels (five stride-2 stages leave one pixel at 32 px).
MIN_SIZE = 32

#: The seed paper's integrated gradients: softmax probability of the predicted class, 10 uniform
#: noise baselines (0-255 pixel space), 50 left-Riemann steps, averaged over the trials (500
#: forward and backward passes per image). Use as ``explain(model, image, **PAPER_IG)``.
PAPER_IG: dict[str, Any] = {
    "method": "integrated_gradients",
    "output": "softmax",
    "baselines": "noise",
    "n_trials": 10,
    "n_steps": 50,
    "integration": "riemann_left",
}

ImageLike = Any  # str | os.PathLike | PIL.Image.Image | np.ndarray | torch.Tensor, or a list of them


@dataclass
class Explanation:
    """What :func:`explain` returns; every array has a leading batch axis ``N``.

    Attributes:
        method: Canonical method name (``'integrated_gradients'``, ``'saliency'``,
            ``'smoothgrad'``, ``'gradcam'``, ``'soft_mask'``, ``'channel_attention'``).
        attributions: ``(N, C, H, W)`` float32 at the model's input resolution: per input channel
            for the gradient methods, ``C = 1`` for Grad-CAM and soft masks, ``None`` for channel
            attention (a per-channel vector, see ``attention``).
        image: ``(N, H, W, 3)`` uint8, the model input as an image (after resize and crop), aligned
            pixel for pixel with ``attributions``.
        inputs: ``(N, C, H, W)`` float32, the normalised model input (for faithfulness metrics).
        target: ``(N,)`` int64, the explained class per image.
        probabilities: ``(N, K)`` float32 softmax of the model's logits.
        label_names: Class names from ``model.pretrained_cfg['label_names']``, or ``None``.
        convergence_delta: ``(N,)`` integrated gradients' completeness error
            ``sum(attributions) - (f(x) - f(baseline))`` (mean over baselines), else ``None``.
        attention: Per attention layer name: soft masks ``(N, H, W)`` upsampled to the input,
            channel-attention weights ``(N, C_layer)``.
        params: The method's parameters (JSON-serialisable), including the resolved
            ``internal_batch_size`` and the model's architecture name.
        sources: The file path of each image, or ``None`` for in-memory inputs.
    """

    method: str
    attributions: np.ndarray | None
    image: np.ndarray
    inputs: np.ndarray
    target: np.ndarray
    probabilities: np.ndarray
    label_names: tuple[str, ...] | None = None
    convergence_delta: np.ndarray | None = None
    attention: dict[str, np.ndarray] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    sources: tuple[str | None, ...] = ()

    def __len__(self) -> int:
        return int(self.target.shape[0])

    def __getitem__(self, index: int | slice) -> Explanation:
        """The explanation of one image (``N = 1``, axes kept) or of a slice of the batch."""
        if not isinstance(index, slice):
            index = operator.index(index)
            if not -len(self) <= index < len(self):
                raise IndexError(f"index {index} out of range for an Explanation of {len(self)} images")
            index = index % len(self)
        sl = slice(index, index + 1) if isinstance(index, int) else index
        return dataclasses.replace(
            self,
            attributions=None if self.attributions is None else self.attributions[sl],
            image=self.image[sl],
            inputs=self.inputs[sl],
            target=self.target[sl],
            probabilities=self.probabilities[sl],
            convergence_delta=None if self.convergence_delta is None else self.convergence_delta[sl],
            attention={k: v[sl] for k, v in self.attention.items()},
            sources=tuple(self.sources[sl]) if self.sources else (),
        )

    @property
    def labels(self) -> list[str]:
        """The explained class of each image, by name (or index as a string without names)."""
        return [self._name(int(t)) for t in self.target]

    @property
    def predicted(self) -> np.ndarray:
        """``(N,)`` predicted class index of each image."""
        return self.probabilities.argmax(1)

    @property
    def predicted_labels(self) -> list[str]:
        """The predicted class of each image, by name."""
        return [self._name(int(t)) for t in self.predicted]

    @property
    def attribution_map(self) -> np.ndarray:
        """``(N, H, W)`` per-pixel attribution: the signed sum over channels.

        For channel attention (no spatial map) this raises ``ValueError``.
        """
        if self.attributions is None:
            raise ValueError(
                f"method={self.method!r} has no spatial attribution map; its per-channel weights are "
                "in .attention. Use a spatial method (integrated_gradients, saliency, smoothgrad, "
                "gradcam, soft_mask) for a map."
            )
        return self.attributions.sum(1)

    def _name(self, index: int) -> str:
        return self.label_names[index] if self.label_names else str(index)

    def numpy(self) -> np.ndarray | None:
        """The attributions, ``(N, C, H, W)`` float32 (``None`` for channel attention)."""
        return self.attributions

    def to_dict(self) -> dict[str, Any]:
        """All fields as a dict of NumPy arrays and plain Python values (labels added; not copied)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["labels"] = self.labels
        out["predicted_labels"] = self.predicted_labels
        return out

    def save(self, path: str | os.PathLike) -> Path:
        """Write a compressed ``.npz`` (no pickle); read it back with :meth:`load`.

        Returns:
            The path written (``.npz`` is appended when missing).
        """
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        names = list(self.attention)
        meta = {
            "format": "cervattn.Explanation/1",
            "method": self.method,
            "label_names": list(self.label_names) if self.label_names else None,
            "params": self.params,
            "sources": list(self.sources),
            "attention": names,
            "notice": RESEARCH_USE_NOTICE,
        }
        arrays = {
            "image": self.image,
            "inputs": self.inputs,
            "target": self.target,
            "probabilities": self.probabilities,
            "meta": np.array(json.dumps(meta)),
        }
        if self.attributions is not None:
            arrays["attributions"] = self.attributions
        if self.convergence_delta is not None:
            arrays["convergence_delta"] = self.convergence_delta
        for i, name in enumerate(names):
            arrays[f"attention_{i}"] = self.attention[name]
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, **arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Explanation:
        """Read an explanation written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as data:
            if "meta" not in data:
                raise ValueError(
                    f"{path} is not a cervattn explanation (no 'meta' entry); pass a file written by "
                    "Explanation.save()."
                )
            meta = json.loads(str(data["meta"]))
            return cls(
                method=meta["method"],
                attributions=data["attributions"] if "attributions" in data else None,
                image=data["image"],
                inputs=data["inputs"],
                target=data["target"],
                probabilities=data["probabilities"],
                label_names=tuple(meta["label_names"]) if meta["label_names"] else None,
                convergence_delta=data["convergence_delta"] if "convergence_delta" in data else None,
                attention={name: data[f"attention_{i}"] for i, name in enumerate(meta["attention"])},
                params=meta["params"],
                sources=tuple(meta["sources"]),
            )

    def plot(
        self,
        kind: Literal["overlay", "paper"] = "overlay",
        *,
        index: int = 0,
        gradient: Explanation | None = None,
        path: str | os.PathLike | None = None,
        **kwargs: Any,
    ):
        """Draw with :mod:`cervattn.viz` (needs matplotlib); returns the matplotlib Figure.

        Args:
            kind: ``'overlay'`` (image, overlay, map; a bar chart for channel attention) or
                ``'paper'`` (the paper's Fig. 2; needs ``gradient``, a saliency Explanation of the
                same images).
            index: Which image of the batch.
            gradient: For ``kind='paper'``.
            path: Also save the figure there (PNG, PDF or SVG by suffix).
            **kwargs: Passed to :func:`cervattn.viz.plot_overlay` or
                :func:`cervattn.viz.plot_paper_figure`.
        """
        from . import viz

        if kind == "overlay":
            return viz.plot_overlay(self, index=index, path=path, **kwargs)
        if kind in ("paper", "fig2"):
            if gradient is None:
                raise ValueError(
                    "kind='paper' (the paper's Fig. 2) needs gradient=, a saliency Explanation of the "
                    "same images: explain(model, image, method='saliency')."
                )
            return viz.plot_paper_figure(self, gradient, index=index, path=path, **kwargs)
        raise ValueError(f"kind={kind!r} is not supported; accepted: 'overlay', 'paper'.")


def load_explanation(path: str | os.PathLike) -> Explanation:
    """Read an explanation written by :meth:`Explanation.save`."""
    return Explanation.load(path)


# ---------------------------------------------------------------------------------------------
# Inputs


@dataclass(frozen=True)
class _Preprocessing:
    transform: Any
    mean: torch.Tensor
    std: torch.Tensor
    in_chans: int


def _preprocessing(model: nn.Module) -> _Preprocessing:
    """The deterministic eval transform of the model's pretrained_cfg (timm's resolve/create)."""
    from timm.data import create_transform, resolve_data_config

    cfg = dict(resolve_data_config(model=model))
    first_conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    in_chans = first_conv.in_channels if first_conv is not None else int(cfg["input_size"][0])
    mean, std = tuple(cfg["mean"]), tuple(cfg["std"])
    if len(mean) != in_chans:
        mean, std = (float(np.mean(mean)),) * in_chans, (float(np.mean(std)),) * in_chans
    cfg.update(mean=mean, std=std, input_size=(in_chans, *tuple(cfg["input_size"])[1:]))
    transform = create_transform(**cfg, is_training=False)
    return _Preprocessing(transform, torch.tensor(mean), torch.tensor(std), in_chans)


def _size_error(what: str, h: int, w: int) -> ValueError:
    return ValueError(
        f"{what} is {h}x{w} px; cervattn models need at least {MIN_SIZE}x{MIN_SIZE} px (five "
        "stride-2 stages). Pass a larger crop of the cell, or upsample it first."
    )


def _array_to_pil(a: np.ndarray):
    from PIL import Image

    if a.ndim == 3 and a.shape[-1] not in (1, 3, 4) and a.shape[0] in (1, 3, 4):
        raise ValueError(
            f"array of shape {a.shape} looks channel-first; arrays are accepted as HxW or HxWxC "
            "(C = 1, 3 or 4). Transpose it with a.transpose(1, 2, 0), or pass a torch tensor "
            "(taken as preprocessed, normalised model input)."
        )
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (1, 3, 4)):
        raise ValueError(
            f"array of shape {a.shape} is not an image; accepted: HxW (grayscale) or HxWxC with "
            "C = 1 (grayscale), 3 (RGB) or 4 (RGBA)."
        )
    if a.dtype == np.uint16:
        a = np.round(a.astype(np.float64) / 257.0).astype(np.uint8)
    elif a.dtype == bool:
        a = a.astype(np.uint8) * 255
    elif a.dtype != np.uint8:
        raise TypeError(
            f"image arrays must be uint8 (0-255) or uint16 (0-65535), got {a.dtype}. Convert, e.g. "
            "np.clip(a * 255, 0, 255).astype(np.uint8) for floats in [0, 1], or pass a torch "
            "tensor that is already normalised model input."
        )
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    return Image.fromarray(np.ascontiguousarray(a))


def _normalise_mode(img, in_chans: int):
    """Grayscale, palette, RGBA (composited on white, the slide's colour) and 16-bit to RGB/L."""
    from PIL import Image

    if img.mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        a = np.asarray(img, dtype=np.float64)
        if img.mode.startswith("I;16") or a.max(initial=0) > 255:
            a = a / 257.0
        img = Image.fromarray(np.clip(np.round(a), 0, 255).astype(np.uint8))
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return img.convert("L" if in_chans == 1 else "RGB")


def _image_to_tensor(obj: Any, prep: _Preprocessing) -> tuple[torch.Tensor, str | None]:
    from PIL import Image

    source = None
    if isinstance(obj, (str, os.PathLike)):
        path = Path(obj)
        if path.is_dir():
            raise ValueError(
                f"{path} is a folder; explain() takes images. Use explain_files(model, [folder], "
                "out_dir) or the `cervattn explain` command to explain every image in a folder."
            )
        if not path.exists():
            raise FileNotFoundError(f"image file {str(path)!r} does not exist; check the path.")
        try:
            with Image.open(path) as im:
                im.load()
                img = im.copy()
        except OSError as err:
            raise ValueError(
                f"cannot read {str(path)!r} as an image ({err}); accepted: any format PIL reads "
                f"({', '.join(sorted(IMAGE_EXTENSIONS))})."
            ) from err
        source = str(path)
    elif isinstance(obj, Image.Image):
        img = obj
    elif isinstance(obj, np.ndarray):
        img = _array_to_pil(obj)
    else:
        raise TypeError(
            f"cannot explain an object of type {type(obj).__name__}; accepted: an image path, a PIL "
            "image, an HxWxC uint8 array, a CxHxW or BxCxHxW float tensor (normalised model input), "
            "or a list of these."
        )
    w, h = img.size
    if min(w, h) < MIN_SIZE:
        raise _size_error(f"image {source or ''}".strip(), h, w)
    return prep.transform(_normalise_mode(img, prep.in_chans)), source


def _tensor_input(t: torch.Tensor, prep: _Preprocessing) -> torch.Tensor:
    if not t.is_floating_point():
        raise TypeError(
            f"tensor of dtype {t.dtype}: tensors are taken as preprocessed, normalised model input "
            "and must be floating point. Pass uint8 images as PIL images or HxWxC numpy arrays, "
            "which explain() preprocesses itself."
        )
    if t.dim() == 3:
        t = t.unsqueeze(0)
    if t.dim() != 4:
        raise ValueError(
            f"tensor of shape {tuple(t.shape)}; accepted: CxHxW or BxCxHxW normalised model input."
        )
    if t.shape[1] != prep.in_chans:
        raise ValueError(
            f"tensor has {t.shape[1]} channels (shape {tuple(t.shape)}) but the model takes "
            f"{prep.in_chans}; accepted: CxHxW or BxCxHxW with C = {prep.in_chans}, channels first. "
            "Permute channels-last tensors with t.permute(2, 0, 1), or pass the image itself."
        )
    if min(t.shape[-2:]) < MIN_SIZE:
        raise _size_error("input tensor", *t.shape[-2:])
    # Tensors made under inference_mode cannot be saved for backward; a normal copy can.
    return t.clone() if t.is_inference() else t


def _prepare_inputs(image: ImageLike, prep: _Preprocessing) -> tuple[torch.Tensor, tuple[str | None, ...]]:
    items = list(image) if isinstance(image, (list, tuple)) else [image]
    if not items:
        raise ValueError("image is an empty list; pass at least one image.")
    tensors, sources = [], []
    for item in items:
        if isinstance(item, torch.Tensor):
            t = _tensor_input(item, prep)
            tensors.append(t)
            sources += [None] * t.shape[0]
        else:
            t, src = _image_to_tensor(item, prep)
            tensors.append(t.unsqueeze(0))
            sources.append(src)
    shapes = {tuple(t.shape[1:]) for t in tensors}
    if len(shapes) > 1:
        raise ValueError(
            f"the images of a batch differ in size after preprocessing ({sorted(shapes)}); a batch "
            "needs one size. Pass images (which are resized to the model's input size) rather than "
            "tensors of different sizes, or explain them one by one."
        )
    return torch.cat([t.detach() for t in tensors]), tuple(sources)


def _resolve_targets(
    target: Any, n: int, num_classes: int, label_names: tuple[str, ...] | None, predicted: torch.Tensor
) -> torch.Tensor:
    if target is None:
        return predicted.clone()
    if isinstance(target, (torch.Tensor, np.ndarray)):
        target = target.tolist()  # 0-d gives a scalar, otherwise a list
    items = list(target) if isinstance(target, (list, tuple)) else [target] * n
    if len(items) != n:
        raise ValueError(
            f"got {len(items)} targets for {n} images; pass one target for all images or one per image."
        )
    out = []
    for t in items:
        if isinstance(t, str):
            if not label_names:
                raise ValueError(
                    f"target={t!r} is a class name but the model has no label_names in its "
                    f"pretrained_cfg; pass a class index 0-{num_classes - 1}."
                )
            if t not in label_names:
                close = difflib.get_close_matches(t, label_names, n=3, cutoff=0.4)
                hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
                raise ValueError(
                    f"unknown target name {t!r}; accepted names: {', '.join(label_names)} (or an "
                    f"index 0-{num_classes - 1}, or None for the predicted class).{hint}"
                )
            t = label_names.index(t)
        elif isinstance(t, (bool, float)) or not isinstance(t, (int, np.integer)):
            raise TypeError(
                f"target {t!r} of type {type(t).__name__}; accepted: None (predicted class), an int "
                "class index, a class name, or a list of those (one per image)."
            )
        if not 0 <= int(t) < num_classes:
            raise ValueError(
                f"target index {int(t)} is out of range; the model has {num_classes} classes "
                f"(0-{num_classes - 1}{': ' + ', '.join(label_names) if label_names else ''})."
            )
        out.append(int(t))
    return torch.tensor(out, dtype=torch.long, device=predicted.device)


def _canonical_method(method: str) -> str:
    name = am.METHOD_ALIASES.get(str(method).lower(), str(method).lower())
    if name not in am.METHODS:
        close = difflib.get_close_matches(str(method), am.METHODS + tuple(am.METHOD_ALIASES), n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(
            f"unknown method {method!r}; accepted: {', '.join(am.METHODS)} (aliases: "
            f"{', '.join(am.METHOD_ALIASES)}).{hint}"
        )
    return name


def _label_names(model: nn.Module, num_classes: int) -> tuple[str, ...] | None:
    cfg = getattr(model, "pretrained_cfg", None) or {}
    names = cfg.get("label_names") if isinstance(cfg, dict) else None
    if names and len(names) == num_classes:
        return tuple(names)
    return None


def _batched_forward(fn, x: torch.Tensor, rows: int) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([fn(x[i : i + rows]) for i in range(0, x.shape[0], rows)])


# ---------------------------------------------------------------------------------------------
# explain()


def explain(
    model: nn.Module,
    image: ImageLike,
    *,
    method: str = "integrated_gradients",
    target: int | str | Sequence[int | str] | None = None,
    output: Literal["logit", "log_softmax", "softmax"] = "logit",
    baselines: str | torch.Tensor = "white",
    n_steps: int = 50,
    integration: str = "gausslegendre",
    n_trials: int | None = None,
    internal_batch_size: int | Literal["auto"] = "auto",
    nt_samples: int = 25,
    noise_level: float = 0.15,
    layer: str | nn.Module | None = None,
    relu_attributions: bool = True,
    blur_sigma: float | None = None,
    seed: int = 0,
) -> Explanation:
    """Explain a model's predictions on one image or a batch.

    Inputs (``image``):
        * a path (``str`` or ``os.PathLike``) to any image PIL reads;
        * a PIL image, or a numpy array ``HxW`` / ``HxWxC`` (C = 1, 3, 4), uint8 or uint16.
          These are preprocessed with the model's deterministic eval transform (timm's
          ``resolve_data_config`` + ``create_transform`` from ``model.pretrained_cfg``: resize,
          centre crop, normalise). Grayscale is replicated to RGB, RGBA is composited on white
          (the slide's colour), 16-bit is scaled to 8-bit;
        * a torch tensor ``CxHxW`` or ``BxCxHxW``, taken as ALREADY preprocessed and normalised
          model input (it is not resized or normalised again);
        * a list of any of these: a batch (all the same size after preprocessing).

    Methods (``method``):
        * ``'integrated_gradients'`` (alias ``'ig'``, the default): captum's IntegratedGradients
          with ``n_steps``, ``integration`` (captum's ``method``: ``'gausslegendre'``,
          ``'riemann_left'``, ``'riemann_right'``, ``'riemann_middle'``, ``'riemann_trapezoid'``)
          and ``baselines``: ``'white'`` (the default: ``(1 - mean) / std`` in normalised space;
          cells lie on a bright slide, so white is the "no cell" image; a black baseline
          attributes the empty slide, see docs/explain.md, "Faithfulness"), ``'black'``
          (``(0 - mean) / std``, not zeros), ``'mean'`` (zeros: the mean colour),
          ``'blurred'`` (Gaussian, sigma ``blur_sigma`` px, default side / 16), ``'noise'``
          (uniform noise in pixel space, averaged over ``n_trials`` = 10 draws, as the paper), or
          a tensor in normalised space. The steps run in chunks of ``internal_batch_size`` rows.
        * ``'saliency'`` (``'gradient'``): the plain, signed input gradient.
        * ``'smoothgrad'``: captum's NoiseTunnel over the gradient, ``nt_samples`` noisy copies
          with noise std ``noise_level`` times the normalised range of a valid image.
        * ``'gradcam'``: captum's LayerGradCam on the last feature stage
          (``model.feature_info[-1]['module']``, else the last conv; or ``layer``), upsampled.
        * ``'soft_mask'``: RAN models' own soft masks (mean over channels, upsampled, averaged
          over attention modules; each module's map in ``Explanation.attention``).
        * ``'channel_attention'``: RCAN models' channel-attention weights per layer (no spatial
          map; vectors in ``Explanation.attention``).

    Args:
        model: Any classifier ``nn.Module`` returning logits ``(N, K)``; cervattn and timm
            models carry their preprocessing and class names in ``pretrained_cfg``. It comes
            back exactly as it was (train/eval mode of every module, ``requires_grad`` of every
            parameter, no hooks), also when an error is raised.
        image: See above.
        method: See above.
        target: ``None`` (the predicted class), a class index, a class name from
            ``model.pretrained_cfg['label_names']``, or a list of those, one per image.
        output: What is attributed: ``'logit'`` (default), ``'log_softmax'`` or ``'softmax'``
            (the paper; saturates).
        baselines: Integrated gradients only, see above.
        n_steps: Integrated gradients: number of steps (passes) per baseline.
        integration: Integrated gradients: the integration rule (captum's ``method``).
        n_trials: Integrated gradients with ``baselines='noise'``: number of noise draws
            (default 10); must be 1 (or ``None``) for the other baselines.
        internal_batch_size: Rows per forward/backward chunk, bounding memory; ``'auto'`` is 4
            images of 224x224 px on CPU (about 0.4 GB for DenseNet-121), 32 on a GPU, scaled
            by pixel count for other sizes. Pass ``n_steps`` to run all steps at once.
        nt_samples: SmoothGrad: number of noisy copies.
        noise_level: SmoothGrad: noise std relative to the image range.
        layer: Grad-CAM: a submodule or its name, instead of the last feature stage.
        relu_attributions: Grad-CAM: keep only positive evidence (the Grad-CAM paper).
        blur_sigma: ``'blurred'`` baseline: Gaussian sigma in pixels.
        seed: Seeds the noise baselines and SmoothGrad; the caller's RNG state is untouched.

    Returns:
        An :class:`Explanation` with a leading batch axis (``N = 1`` for one image).

    Raises:
        RuntimeError: Called under ``torch.inference_mode()`` (captum needs autograd).
        ValueError: Wrong number of channels, images smaller than 32 px, unknown target names
            or methods, models without the attention a method reads.
        TypeError: Unsupported input types or dtypes.
        FileNotFoundError: A path that does not exist.

    Examples:
        >>> import cervattn
        >>> model = cervattn.create_model("rcan_densenet121")
        >>> e = cervattn.explain(model, "cell.bmp", target="Koilocytotic")
        >>> e.attributions.shape, e.labels, float(e.convergence_delta[0])
        >>> e.plot(path="cell_ig.png")
        >>> from cervattn.explanations import PAPER_IG
        >>> e_paper = cervattn.explain(model, "cell.bmp", **PAPER_IG)
    """
    if torch.is_inference_mode_enabled():
        raise RuntimeError(
            "explain() was called inside torch.inference_mode(); attribution needs autograd, which "
            "inference mode disables (captum cannot work there). Call explain() outside the "
            "inference_mode block; it puts the model in eval mode and uses no_grad itself where "
            "gradients are not needed."
        )
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}; create one with "
                        "cervattn.create_model(name).")
    method = _canonical_method(method)
    if output not in am.OUTPUTS:
        am.make_forward(model, output)  # raises the documented ValueError
    if not isinstance(n_steps, int) or n_steps < 1:
        raise ValueError(f"n_steps must be a positive int, got {n_steps!r}; captum's default is 50.")
    if integration not in am.INTEGRATIONS:
        raise ValueError(
            f"integration={integration!r} is not supported; accepted: {', '.join(am.INTEGRATIONS)} "
            "(captum's `method` of IntegratedGradients). The paper used 'riemann_left'."
        )
    noise = isinstance(baselines, str) and baselines == "noise"
    if noise:
        n_trials = 10 if n_trials is None else n_trials
    elif n_trials not in (None, 1):
        raise ValueError(
            f"n_trials={n_trials} needs random baselines; baselines={baselines!r} is the same in every "
            "trial. Pass baselines='noise' (the paper's uniform-noise trials) or leave n_trials unset."
        )
    n_trials = 1 if n_trials is None else n_trials
    if not isinstance(n_trials, int) or n_trials < 1:
        raise ValueError(f"n_trials must be a positive int, got {n_trials!r}; the paper uses 10.")

    prep = _preprocessing(model)
    x, sources = _prepare_inputs(image, prep)
    param = next(model.parameters(), None)
    if param is not None:
        x = x.to(device=param.device, dtype=param.dtype)
    if internal_batch_size == "auto":
        rows = am.auto_internal_batch_size(x.shape[-2], x.shape[-1], x.device)
    elif isinstance(internal_batch_size, int) and internal_batch_size >= 1:
        rows = internal_batch_size
    else:
        raise ValueError(
            f"internal_batch_size must be a positive int or 'auto', got {internal_batch_size!r}."
        )
    params: dict[str, Any] = {
        "model": (getattr(model, "pretrained_cfg", None) or {}).get("architecture", type(model).__name__),
        "output": output,
        "internal_batch_size": rows,
    }
    delta = None
    attention: dict[str, torch.Tensor] = {}

    with am.prepared_model(model):
        forward = am.make_forward(model, output)
        n = x.shape[0]
        base = []
        if method == "integrated_gradients":
            base = [
                am.make_baselines(baselines, x, prep.mean, prep.std, trial=t, seed=seed, blur_sigma=blur_sigma)
                for t in range(n_trials)
            ]
        # One no-grad pass gives the prediction and, for IG, the baselines' scores (completeness).
        all_logits = _batched_forward(model, torch.cat([x, *base]) if base else x, rows)
        logits = all_logits[:n]
        probs = F.softmax(logits.float(), dim=1)
        label_names = _label_names(model, logits.shape[1])
        tgt = _resolve_targets(target, n, logits.shape[1], label_names, logits.argmax(1))
        if method == "integrated_gradients":
            attr = am.integrated_gradients(
                forward, x, tgt, base, n_steps=n_steps, integration=integration, internal_batch_size=rows
            )
            # Completeness: sum(attr) = f(x) - mean_t f(b_t), up to the integration error.
            scores = am.apply_output(all_logits, output).view(n_trials + 1, n, -1)
            idx = torch.arange(n, device=tgt.device)
            gap = scores[0, idx, tgt] - scores[1:, idx, tgt].mean(0)
            delta = attr.sum((1, 2, 3)) - gap
            params.update(
                baselines=baselines if isinstance(baselines, str) else "tensor",
                n_steps=n_steps,
                integration=integration,
                n_trials=n_trials,
                seed=seed,
                **({"blur_sigma": blur_sigma} if isinstance(baselines, str) and baselines == "blurred" else {}),
            )
        elif method == "saliency":
            attr = am.saliency(forward, x, tgt, internal_batch_size=rows)
        elif method == "smoothgrad":
            attr = am.smoothgrad(
                forward, x, tgt, prep.std, nt_samples=nt_samples, noise_level=noise_level,
                internal_batch_size=rows, seed=seed,
            )
            params.update(nt_samples=nt_samples, noise_level=noise_level, seed=seed)
        elif method == "gradcam":
            attr, layer_name = am.gradcam(
                forward, model, x, tgt, layer=layer, relu_attributions=relu_attributions,
                internal_batch_size=rows,
            )
            params.update(layer=layer_name, relu_attributions=relu_attributions)
        elif method == "soft_mask":
            attr, attention = am.soft_masks(model, x, internal_batch_size=rows)
        else:  # channel_attention
            attr, attention = None, am.channel_attention(model, x, internal_batch_size=rows)

    mean = prep.mean.view(1, -1, 1, 1).to(x)
    std = prep.std.view(1, -1, 1, 1).to(x)
    img = ((x.detach() * std + mean).clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1)
    if img.shape[-1] == 1:
        img = img.expand(-1, -1, -1, 3)
    return Explanation(
        method=method,
        attributions=None if attr is None else attr.detach().float().cpu().numpy(),
        image=img.cpu().numpy().copy(),
        inputs=x.detach().float().cpu().numpy(),
        target=tgt.cpu().numpy().astype(np.int64),
        probabilities=probs.cpu().numpy(),
        label_names=label_names,
        convergence_delta=None if delta is None else delta.detach().cpu().numpy(),
        attention={k: v.detach().float().cpu().numpy() for k, v in attention.items()},
        params=params,
        sources=sources,
    )


# ---------------------------------------------------------------------------------------------
# Files and folders (the `cervattn explain` command)


def _progress(iterable, total: int, enabled: bool, desc: str):
    if not enabled:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return iterable
    return tqdm(iterable, total=total, desc=desc, unit="batch")


def explain_files(
    model: nn.Module,
    paths: Sequence[str | os.PathLike] | str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    method: str = "integrated_gradients",
    target: int | str | None = None,
    batch_size: int = 8,
    progress: bool = True,
    figure_format: Literal["png", "pdf", "svg"] = "png",
    save_arrays: bool = False,
    **explain_kwargs: Any,
) -> list[dict[str, Any]]:
    """Explain image files and folders; write one figure per image and the predictions.

    For integrated gradients the figure is the paper's Fig. 2 (image, gradient overlay, IG
    overlay, gradient, IG; a saliency pass is added for it), otherwise the overlay figure.
    Writes ``out_dir/<stem>_<method>.<figure_format>``, optionally ``<stem>_<method>.npz``, and
    ``predictions.json`` plus ``predictions.csv`` (one row per image: path, predicted class,
    probability per class, explained class, convergence delta, figure).

    Args:
        model: The classifier (see :func:`explain`).
        paths: Image files and folders (folders are searched recursively for
            :data:`IMAGE_EXTENSIONS`).
        out_dir: Output folder, created if missing.
        method, target: As in :func:`explain`.
        batch_size: Images per :func:`explain` call.
        progress: Show a tqdm progress bar when tqdm is installed (log lines otherwise).
        figure_format: ``'png'``, ``'pdf'`` or ``'svg'``.
        save_arrays: Also save each image's :class:`Explanation` as ``.npz``.
        **explain_kwargs: Passed to :func:`explain` (``n_steps``, ``baselines``, ...).

    Returns:
        One record (dict) per image, in the order of the expanded paths.
    """
    from . import viz

    files = expand_images([paths] if isinstance(paths, (str, os.PathLike)) else paths)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    method = _canonical_method(method)
    used: set[str] = set()
    records: list[dict[str, Any]] = []
    batches = [files[i : i + batch_size] for i in range(0, len(files), max(1, batch_size))]
    for bi, batch in enumerate(_progress(batches, len(batches), progress, f"explain ({method})")):
        if not progress:
            _logger.info("explain: batch %d/%d", bi + 1, len(batches))
        expl = explain(model, [str(f) for f in batch], method=method, target=target, **explain_kwargs)
        grad = None
        if method == "integrated_gradients":
            grad_kwargs = {k: v for k, v in explain_kwargs.items() if k in ("output", "internal_batch_size")}
            grad = explain(model, torch.from_numpy(expl.inputs), method="saliency",
                           target=expl.target.tolist(), **grad_kwargs)
        for i, f in enumerate(batch):
            stem = f"{f.stem}_{method}"
            k = 1
            while stem in used:
                k += 1
                stem = f"{f.stem}_{k}_{method}"
            used.add(stem)
            fig_path = out / f"{stem}.{figure_format}"
            one = expl[i]
            if grad is not None:
                viz.plot_paper_figure(one, grad[i], path=fig_path)
            else:
                viz.plot_overlay(one, path=fig_path)
            npz = str(one.save(out / f"{stem}.npz")) if save_arrays else None
            names = one.label_names or tuple(str(c) for c in range(one.probabilities.shape[1]))
            records.append({
                "path": str(f),
                "predicted": one.predicted_labels[0],
                "predicted_index": int(one.predicted[0]),
                "probabilities": {n: float(p) for n, p in zip(names, one.probabilities[0])},
                "target": one.labels[0],
                "target_index": int(one.target[0]),
                "method": method,
                "convergence_delta": None if one.convergence_delta is None else float(one.convergence_delta[0]),
                "figure": str(fig_path),
                "arrays": npz,
            })
    _write_reports(out, records, method, model, explain_kwargs)
    return records


def _write_reports(out: Path, records: list[dict], method: str, model: nn.Module, kwargs: dict) -> None:
    meta = {
        "notice": RESEARCH_USE_NOTICE,
        "model": (getattr(model, "pretrained_cfg", None) or {}).get("architecture", type(model).__name__),
        "method": method,
        "options": {k: v for k, v in kwargs.items() if isinstance(v, (int, float, str, bool, type(None)))},
        "images": records,
    }
    (out / "predictions.json").write_text(json.dumps(meta, indent=2))
    classes = list(records[0]["probabilities"]) if records else []
    with open(out / "predictions.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "predicted", *[f"p_{c}" for c in classes], "target", "convergence_delta", "figure"])
        for r in records:
            w.writerow([
                r["path"], r["predicted"], *[f"{r['probabilities'][c]:.6f}" for c in classes],
                r["target"], "" if r["convergence_delta"] is None else f"{r['convergence_delta']:.6g}",
                r["figure"],
            ])
