"""Image transforms for cytology: deterministic evaluation and rotation/flip-invariant training.

Both read input size, interpolation, mean and std from a timm model's ``pretrained_cfg`` (through
``timm.data.resolve_data_config``), so images are normalised exactly as the weights expect. Pap-smear
cells have no canonical orientation, so training uses the full dihedral group (90-degree rotations,
both flips) plus arbitrary rotations whose empty corners are filled with the slide's bright
background taken from the image border, never black. Colour jitter is mild: stain colour carries
class information. All transforms are module-level classes built on torchvision.transforms (v1),
so they pickle into DataLoader workers.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from PIL import Image
from timm.data import create_transform, resolve_data_config
from timm.data.transforms import str_to_interp_mode
from torchvision import transforms as T

__all__ = ["BackgroundRotation", "RandomRot90", "eval_transform", "resolve_cfg", "train_transform"]

_OVERRIDES = ("interpolation", "mean", "std", "crop_pct", "crop_mode")


def resolve_cfg(model_or_cfg: Any, img_size: int | tuple[int, int] | None = None, **overrides) -> dict:
    """Resolve the data config (input_size, interpolation, mean, std, crop_pct, crop_mode).

    Args:
        model_or_cfg: A timm model (its ``pretrained_cfg`` is read), a ``pretrained_cfg`` dict or
            ``timm.models.PretrainedCfg``, or a data-config dict as returned by
            ``timm.data.resolve_data_config``.
        img_size: Override of the input size: an int (square) or ``(height, width)``.
        **overrides: Any of interpolation, mean, std, crop_pct, crop_mode.

    Returns:
        The data config dict, ``input_size`` as ``(channels, height, width)``.

    Raises:
        TypeError: ``model_or_cfg`` is of another type, or an unknown override is given.
        ValueError: ``img_size`` is not a positive int or pair of them.
    """
    unknown = sorted(set(overrides) - set(_OVERRIDES))
    if unknown:
        raise TypeError(f"Unknown data-config override(s) {unknown}; accepted: {_OVERRIDES}.")
    if isinstance(model_or_cfg, torch.nn.Module):
        cfg = getattr(model_or_cfg, "pretrained_cfg", None)
        if not cfg:
            warnings.warn(
                f"{type(model_or_cfg).__name__} has no pretrained_cfg; using timm's ImageNet defaults "
                "(224 px, ImageNet mean/std). Build the model with cervattn/timm create_model, or pass a cfg.",
                stacklevel=3,
            )
    elif isinstance(model_or_cfg, Mapping):
        cfg = dict(model_or_cfg)
    elif hasattr(model_or_cfg, "to_dict"):
        cfg = model_or_cfg.to_dict()
    else:
        raise TypeError(
            f"model_or_cfg of type {type(model_or_cfg).__name__} is not accepted: pass a timm model, its "
            "pretrained_cfg (dict or PretrainedCfg), or a data config from timm.data.resolve_data_config."
        )
    args = {k: v for k, v in overrides.items() if v is not None}
    if img_size is not None:
        hw = (img_size, img_size) if isinstance(img_size, numbers.Integral) else tuple(img_size)
        if len(hw) != 2 or not all(isinstance(s, numbers.Integral) and s > 0 for s in hw):
            raise ValueError(
                f"img_size={img_size!r} is not accepted: give a positive int or (height, width)."
            )
        in_chans = (cfg.get("input_size") or (3,))[0]
        args["input_size"] = (in_chans, *(int(s) for s in hw))
    data_cfg = resolve_data_config(args=args, pretrained_cfg=cfg or {"input_size": (3, 224, 224)})
    data_cfg["input_size"] = tuple(data_cfg["input_size"])
    return data_cfg


def eval_transform(
    model_or_cfg: Any, img_size: int | tuple[int, int] | None = None, **overrides
) -> T.Compose:
    """Deterministic evaluation transform (resize, center crop, tensor, normalise) as timm builds it.

    Args:
        model_or_cfg: See :func:`resolve_cfg`.
        img_size: Input size override, an int or ``(height, width)``.
        **overrides: interpolation, mean, std, crop_pct or crop_mode (see :func:`resolve_cfg`).

    Returns:
        A picklable transform from a PIL image to a float tensor ``(3, H, W)``.

    Examples:
        >>> tf = eval_transform(model)
        >>> x = tf(Image.open("001_01.bmp").convert("RGB")).unsqueeze(0)
    """
    cfg = resolve_cfg(model_or_cfg, img_size, **overrides)
    return create_transform(**cfg, is_training=False)


def _pil_only(image: Any, name: str) -> Image.Image:
    if not isinstance(image, Image.Image):
        raise TypeError(f"{name} takes a PIL image, got {type(image).__name__}; apply it before ToTensor.")
    return image


class RandomRot90:
    """Rotate a PIL image by 0, 90, 180 or 270 degrees, uniformly at random (lossless)."""

    _OPS = (None, Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_180, Image.Transpose.ROTATE_270)

    def __call__(self, image: Image.Image) -> Image.Image:
        op = self._OPS[int(torch.randint(4, ()))]
        image = _pil_only(image, "RandomRot90")
        return image if op is None else image.transpose(op)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class BackgroundRotation:
    """Rotate a PIL image by a random angle, filling the corners with the slide background.

    Args:
        degrees: Angles are drawn uniformly from ``[-degrees, degrees]``.
        fill: ``"border"`` (per-channel median of the image's outermost pixels: the bright slide
            background of a cell crop) or an RGB tuple of ints.
        interpolation: Pillow resampling for the rotation, "bilinear" (default) or "bicubic" ...
    """

    def __init__(
        self, degrees: float = 45.0, fill: str | tuple[int, int, int] = "border", interpolation="bilinear"
    ):
        if not (isinstance(fill, tuple) and len(fill) == 3) and fill != "border":
            raise ValueError(
                f"fill={fill!r} is not accepted: use 'border' or an RGB tuple such as (235, 230, 240)."
            )
        self.degrees, self.fill, self.interpolation = float(degrees), fill, interpolation

    @staticmethod
    def border_color(image: Image.Image) -> tuple[int, ...]:
        """Per-channel median of the outermost row and column pixels of an RGB image."""
        image = image if image.mode == "RGB" else image.convert("RGB")
        w, h = image.size
        boxes = ((0, 0, w, 1), (0, h - 1, w, h), (0, 0, 1, h), (w - 1, 0, w, h))  # no full-image copy
        edge = np.concatenate([np.asarray(image.crop(b)).reshape(-1, 3) for b in boxes])
        return tuple(int(v) for v in np.median(edge, axis=0))

    def __call__(self, image: Image.Image) -> Image.Image:
        image = _pil_only(image, "BackgroundRotation")
        angle = float(torch.empty(()).uniform_(-self.degrees, self.degrees))
        if image.mode != "RGB":
            image = image.convert("RGB")
        fill = self.border_color(image) if self.fill == "border" else self.fill
        resample = Image.Resampling[self.interpolation.upper()]
        return image.rotate(angle, resample=resample, expand=False, fillcolor=fill)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(degrees={self.degrees}, fill={self.fill!r}, interpolation={self.interpolation!r})"


def train_transform(
    model_or_cfg: Any,
    img_size: int | tuple[int, int] | None = None,
    scale: tuple[float, float] = (0.8, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    degrees: float = 45.0,
    color_jitter: tuple[float, float, float, float] = (0.1, 0.1, 0.1, 0.02),
    hflip: float = 0.5,
    vflip: float = 0.5,
    **overrides,
) -> T.Compose:
    """Cytology training augmentation, then normalisation with the cfg's mean and std.

    Steps: random resized crop (mild ``scale``, to the cfg's input size, so later steps run on the
    small image), random 90-degree rotation, random rotation in ``[-degrees, degrees]`` filled with
    the border (background) colour, horizontal and vertical flips, colour jitter, tensor, normalise.

    Args:
        model_or_cfg: See :func:`resolve_cfg`.
        img_size: Input size override, an int or ``(height, width)``.
        scale: Area fraction range of the random crop.
        ratio: Aspect-ratio range of the random crop.
        degrees: Maximum arbitrary rotation (0 disables it; 90-degree rotations stay).
        color_jitter: ``(brightness, contrast, saturation, hue)`` for ``ColorJitter``; ``None``
            disables it.
        hflip: Probability of a horizontal flip.
        vflip: Probability of a vertical flip.
        **overrides: interpolation, mean or std (see :func:`resolve_cfg`).

    Returns:
        A picklable transform from a PIL image to a float tensor ``(3, H, W)``.
    """
    cfg = resolve_cfg(model_or_cfg, img_size, **overrides)
    size = cfg["input_size"][1:]
    steps: list[Any] = [
        T.RandomResizedCrop(
            size, scale=scale, ratio=ratio, interpolation=str_to_interp_mode(cfg["interpolation"])
        ),
        RandomRot90(),
    ]
    if degrees:
        steps.append(BackgroundRotation(degrees))
    if hflip:
        steps.append(T.RandomHorizontalFlip(hflip))
    if vflip:
        steps.append(T.RandomVerticalFlip(vflip))
    if color_jitter is not None:
        steps.append(T.ColorJitter(*color_jitter))
    steps += [T.ToTensor(), T.Normalize(mean=list(cfg["mean"]), std=list(cfg["std"]))]
    return T.Compose(steps)
