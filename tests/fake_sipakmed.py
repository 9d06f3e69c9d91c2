"""Tiny fake SIPaKMeD trees for tests (a few KB, built in ``tmp_path`` in milliseconds).

Each class gets ``fields_per_class`` field images with ``cells_per_field`` cells each; every image
is a small flat patch of the class's colour on a bright background, so a model can learn the
classes in a few steps. :func:`write_fake_splits` writes a split file for the tree in the
shipped file's format (its paths say ``.webp``, whatever extension the files have).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from cervattn.constants import SIPAKMED_CLASSES

LAYOUTS = ("official", "single", "plain")
#: RGB colour of each class's cell, on a (235, 232, 240) slide background.
CLASS_COLORS = ((150, 40, 90), (60, 120, 170), (170, 110, 60), (60, 160, 80), (200, 150, 190))
BACKGROUND = (235, 232, 240)


def _image(label: int, size: tuple[int, int], seed: int) -> Image.Image:
    w, h = size
    arr = np.empty((h, w, 3), dtype=np.uint8)
    arr[:] = BACKGROUND
    arr[h // 4 : h - h // 4, w // 4 : w - w // 4] = CLASS_COLORS[label]
    noise = np.random.default_rng(seed).integers(-6, 7, size=arr.shape)
    return Image.fromarray(np.clip(arr + noise, 0, 255).astype(np.uint8), "RGB")


def class_dir(root: Path, cls: str, layout: str) -> Path:
    """Folder that holds the field images of ``cls`` in ``layout`` (cells are in its CROPPED)."""
    if layout == "official":
        return root / f"im_{cls}" / f"im_{cls}"
    if layout == "single":
        return root / f"im_{cls}"
    if layout == "plain":
        return root / cls
    raise ValueError(f"layout={layout!r} is not one of {LAYOUTS}")


def cell_path(
    root: Path, cls: str, field: int, cell: int, layout: str = "official", ext: str = ".bmp"
) -> Path:
    folder = class_dir(root, cls, layout)
    return (folder if layout == "plain" else folder / "CROPPED") / f"{field:03d}_{cell:02d}{ext}"


def make_fake_sipakmed(
    root: str | Path,
    layout: str = "official",
    exts: Sequence[str] = (".bmp",),
    fields_per_class: int = 3,
    cells_per_field: int = 2,
    multi: bool = True,
    size: tuple[int, int] = (12, 10),
    classes: Sequence[str] = SIPAKMED_CLASSES,
) -> Path:
    """Build a fake SIPaKMeD tree under ``root`` and return ``root``.

    Args:
        root: Folder to fill (created).
        layout: "official" (``im_<C>/im_<C>/CROPPED``), "single" (``im_<C>/CROPPED``) or "plain"
            (``<C>/NNN_MM.ext``, field images beside the cells).
        exts: Extensions used in turn, image by image (several give a mixed-extension tree).
        fields_per_class: Field images per class, ids 001, 002, ...
        cells_per_field: Cells per field image, ids 01, 02, ...
        multi: Also write the field images ``NNN.ext``.
        size: ``(width, height)`` of the cell images; field images are twice as large.
        classes: Class folders to create (a subset makes a broken tree).
    """
    root = Path(root)
    n = 0
    for cls in classes:
        label = SIPAKMED_CLASSES.index(cls)
        for field in range(1, fields_per_class + 1):
            for cell in range(1, cells_per_field + 1):
                path = cell_path(root, cls, field, cell, layout, exts[n % len(exts)])
                path.parent.mkdir(parents=True, exist_ok=True)
                _image(label, size, seed=n).save(path)
                n += 1
            if multi:
                path = class_dir(root, cls, layout) / f"{field:03d}{exts[n % len(exts)]}"
                path.parent.mkdir(parents=True, exist_ok=True)
                _image(label, (2 * size[0], 2 * size[1]), seed=n).save(path)
                n += 1
    return root


def fake_split_of(field: int) -> str:
    """Split of fake field ``field``: 1, 2 -> train, 3 -> val, 4 -> test, then again."""
    return ("train", "train", "val", "test")[(field - 1) % 4]


def write_fake_splits(
    path: str | Path,
    fields_per_class: int = 4,
    cells_per_field: int = 2,
    multi: bool = True,
    classes: Sequence[str] = SIPAKMED_CLASSES,
) -> Path:
    """Write a split file listing the images of a fake tree (splits from :func:`fake_split_of`)."""
    path = Path(path)
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "kind", "label", "field", "split", "original_sha256", "width", "height"])
        for cls in classes:
            base = f"im_{cls}/im_{cls}"
            for field in range(1, fields_per_class + 1):
                split = fake_split_of(field)
                for cell in range(1, cells_per_field + 1):
                    row = [
                        f"{base}/CROPPED/{field:03d}_{cell:02d}.webp",
                        "isolated",
                        cls,
                        f"{field:03d}",
                        split,
                    ]
                    writer.writerow(row + ["0" * 64, 12, 10])
                if multi:
                    writer.writerow(
                        [f"{base}/{field:03d}.webp", "multi", cls, f"{field:03d}", split, "0" * 64, 24, 20]
                    )
    return path
