"""Prediction on image files: class label and probabilities per image.

Research use only, not for clinical diagnosis.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .engine import TransformedDataset, predict_logits, resolve_device
from .evaluate import label_names

__all__ = ["Prediction", "expand_images", "format_predictions", "predict"]


@dataclass(frozen=True)
class Prediction:
    """The prediction for one image.

    Attributes:
        image: The file path, or ``"<image i>"`` for an in-memory image.
        label: Predicted class name.
        index: Predicted class index.
        probability: Its probability.
        probabilities: ``{class name: probability}`` in the model's class order.
    """

    image: str
    label: str
    index: int
    probability: float
    probabilities: dict[str, float]

    def top(self, k: int) -> list[tuple[str, float]]:
        """The ``k`` most probable ``(class, probability)`` pairs, most probable first."""
        return sorted(self.probabilities.items(), key=lambda kv: -kv[1])[:k]

    def to_dict(self, top_k: int | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"image": self.image, "label": self.label, "index": self.index,
                               "probability": self.probability, "probabilities": self.probabilities}
        if top_k:
            out["top_k"] = [{"label": c, "probability": p} for c, p in self.top(top_k)]
        return out


def expand_images(inputs: Iterable[str | os.PathLike], recursive: bool = True) -> list[Path]:
    """Files as given, folders expanded to the image files in them (any extension Pillow reads), sorted.

    Raises:
        FileNotFoundError: An input does not exist, or a folder holds no image.
    """
    from .data import IMAGE_EXTENSIONS

    out: list[Path] = []
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            pattern = path.rglob("*") if recursive else path.iterdir()
            found = sorted(p for p in pattern if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                raise FileNotFoundError(
                    f"Folder {str(path)!r} holds no image file (extensions Pillow reads, e.g. .bmp .png .jpg .webp "
                    ".tif). Pass image files or a folder that contains some."
                )
            out += found
        elif path.is_file():
            out.append(path)
        else:
            raise FileNotFoundError(f"{str(path)!r} does not exist; pass image files or folders of images.")
    return out


class _Images(Dataset):
    def __init__(self, items: Sequence[Any]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        from .data import load_rgb

        item = self.items[index]
        if isinstance(item, (str, os.PathLike)):
            item = load_rgb(item)
        elif isinstance(item, Image.Image) and item.mode != "RGB":
            from .data import to_rgb

            item = to_rgb(item)
        return item, -1


def predict(
    model: nn.Module,
    images: Iterable[str | os.PathLike | Image.Image | torch.Tensor],
    *,
    batch_size: int = 32,
    transform: Any = None,
    device: str | torch.device | None = None,
    amp: bool = False,
    workers: int = 0,
    progress: bool = False,
) -> list[Prediction]:
    """Classify images.

    Args:
        model: A classifier; its ``pretrained_cfg`` gives the input size, mean/std and class names.
        images: Image files, folders (expanded with :func:`expand_images`), PIL images, or tensors
            ``(3, H, W)`` already transformed; mixed freely.
        batch_size: Images per forward pass.
        transform: For files and PIL images; default :func:`cervattn.data.eval_transform` of the model.
        device: ``None`` for CUDA when available, else the CPU.
        amp: Mixed-precision inference.
        workers: DataLoader worker processes for decoding.
        progress: Show a progress bar.

    Returns:
        One :class:`Prediction` per image, in input order.

    Examples:
        >>> model = cervattn.create_model("rcan_densenet121.<tag>", pretrained=True)
        >>> [(p.image, p.label, round(p.probability, 3)) for p in predict(model, ["cells/"])]
    """
    from .data import eval_transform

    items: list[Any] = []
    for item in images:
        items += expand_images([item]) if isinstance(item, (str, os.PathLike)) else [item]
    dev = resolve_device(device)
    model = model.to(dev)
    data = TransformedDataset(_Images(items), transform if transform is not None else eval_transform(model))
    loader = DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=workers)
    logits, _, _ = predict_logits(model, loader, dev, amp=amp, progress=progress, desc="predict")
    if not items:
        return []
    probs = torch.softmax(logits, 1)
    names = label_names(model, probs.shape[1])
    out = []
    for i, (item, p) in enumerate(zip(items, probs.tolist())):
        k = max(range(len(p)), key=p.__getitem__)
        image = os.fspath(item) if isinstance(item, (str, os.PathLike)) else f"<image {i}>"
        out.append(Prediction(image, names[k], k, p[k], dict(zip(names, p))))
    return out


def format_predictions(predictions: Sequence[Prediction], top_k: int | None = None, digits: int = 3) -> str:
    """An aligned text table: image, label, probability, then every class's probability
    (or, with ``top_k``, the ``top_k`` most probable classes)."""
    if not predictions:
        return ""
    names = list(predictions[0].probabilities)
    if top_k:
        header = ["image", *[f"top-{i + 1}" for i in range(top_k)]]
        rows = [[p.image, *[f"{c} {v:.{digits}f}" for c, v in p.top(top_k)]] for p in predictions]
    else:
        header = ["image", "label", "p", *names]
        rows = [[p.image, p.label, f"{p.probability:.{digits}f}",
                 *[f"{p.probabilities[c]:.{digits}f}" for c in names]] for p in predictions]
    cells = [header, *rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells) + "\n"
