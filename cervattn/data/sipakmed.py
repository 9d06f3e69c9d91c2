"""The SIPaKMeD Pap-smear dataset (Plissiti et al., ICIP 2018) as a PyTorch dataset.

M. E. Plissiti, P. Dimitrakopoulos, G. Sfikas, C. Nikou, O. Krikoni, A. Charchanti, "SIPaKMeD: a
new dataset for feature and image based classification of normal and pathological cervical cells
in Pap smear images", IEEE ICIP 2018. https://www.cs.uoi.gr/~marina/sipakmed.html
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from cervattn.constants import RESEARCH_USE_NOTICE, SIPAKMED_CLASSES
from cervattn.data.splits import (
    DEFAULT_SPLITS_PATH,
    KINDS,
    SPLIT_NAMES,
    SplitRow,
    load_splits,
    normalize_cell,
    normalize_field,
)

__all__ = ["EXPECTED_TREE", "IMAGE_EXTENSIONS", "SIPaKMeD", "Sample", "load_rgb", "to_rgb"]

_logger = logging.getLogger(__name__)

#: Lower-case extensions of every format Pillow can open (.bmp, .png, .jpg, .webp, .tif, ...).
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    ext.lower() for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN
)

EXPECTED_TREE = """\
<root>/
    im_Dyskeratotic/im_Dyskeratotic/CROPPED/001_01.bmp   isolated cells: cell 01 of field image 001
    im_Dyskeratotic/im_Dyskeratotic/001.bmp              field images (kind="multi")
    im_Koilocytotic/...   im_Metaplastic/...   im_Parabasal/...   im_Superficial-Intermediate/...
Also accepted: one level of nesting (im_<Class>/CROPPED/NNN_MM.ext, im_<Class>/NNN.ext), plain
class folders (<Class>/NNN_MM.ext), class folder names in any case, any image extension Pillow reads."""

_CELL_RE = re.compile(r"^(\d+)_(\d+)$")
_FIELD_RE = re.compile(r"^(\d+)$")
_ON_ERROR = ("raise", "skip")


class Sample(NamedTuple):
    """One image of the dataset (``path`` and ``label`` first, as in torchvision's ``samples``)."""

    path: Path
    label: int
    class_name: str
    field: str
    cell: str | None
    split: str | None


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow image to 8-bit RGB.

    16-bit images (and 32-bit integer ones with values above 255) are scaled from 0..65535 to
    0..255, not clipped; float images in 0..1 are scaled by 255; transparent images are composited
    on white (the slide background) rather than on black.
    """
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I") or image.mode == "F":
        arr = np.asarray(image, dtype=np.float64)
        if image.mode == "F" and arr.size and np.nanmax(arr) <= 1.0:
            arr = arr * 255.0
        elif image.mode.startswith("I;16") or (image.mode == "I" and arr.size and arr.max() > 255):
            arr = arr / 257.0  # 16-bit full range 0..65535 -> 0..255
        image = Image.fromarray(np.clip(np.nan_to_num(arr), 0, 255).round().astype(np.uint8))
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "La", "RGBa", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def load_rgb(path: str | os.PathLike) -> Image.Image:
    """Read an image file as an 8-bit RGB Pillow image (see :func:`to_rgb`).

    Raises:
        OSError: The file cannot be read or decoded; the message names the file.
    """
    try:
        with Image.open(path) as image:
            image.load()
            return to_rgb(image)
    except (OSError, ValueError, SyntaxError) as e:  # Pillow raises all three for broken files
        raise OSError(
            f"Cannot decode image {str(path)!r}: {e}. Re-download or delete the file; "
            "SIPaKMeD(..., on_error='skip') skips files that fail the index-time check."
        ) from e


def _norm(name: str) -> str:
    name = name.lower()
    name = name.removeprefix("im_")
    return re.sub(r"[^a-z0-9]", "", name)


_CLASS_BY_NORM = {_norm(c): c for c in SIPAKMED_CLASSES}


def _wrong_root(root: Path, problem: str) -> FileNotFoundError:
    found = sorted(p.name for p in root.iterdir())[:10] if root.is_dir() else []
    seen = f" It contains: {found}." if found else ""
    return FileNotFoundError(
        f"SIPaKMeD root {str(root)!r}: {problem}.{seen} Expected tree:\n{EXPECTED_TREE}\n"
        "Pass the folder that holds the five class folders, or download SIPaKMeD from "
        "https://www.cs.uoi.gr/~marina/sipakmed.html."
    )


def _class_dirs(root: Path) -> dict[str, Path]:
    if not root.is_dir():
        raise _wrong_root(root, "is not a directory")
    found: dict[str, list[Path]] = {}
    for child in root.iterdir():
        if child.is_dir() and _norm(child.name) in _CLASS_BY_NORM:
            found.setdefault(_CLASS_BY_NORM[_norm(child.name)], []).append(child)
    absent = [c for c in SIPAKMED_CLASSES if c not in found]
    if absent:
        raise _wrong_root(root, f"no folder for the class(es) {absent}")
    twice = {c: [str(p) for p in ps] for c, ps in found.items() if len(ps) > 1}
    if twice:
        raise ValueError(
            f"SIPaKMeD root {str(root)!r} has several folders for one class: {twice}. "
            "Keep one folder per class (remove or move the others)."
        )
    dirs = {}
    for cls, (path,) in found.items():
        nested = [p for p in path.iterdir() if p.is_dir() and _norm(p.name) == _norm(cls)]
        dirs[cls] = nested[0] if len(nested) == 1 else path  # official layout nests im_<Class> twice
    return dirs


def _scan(class_dir: Path) -> list[tuple[Path, str, str, str | None]]:
    """List ``(path, kind, field, cell)`` for every image in a class folder (and its CROPPED)."""
    folders = [class_dir] + [p for p in class_dir.iterdir() if p.is_dir() and p.name.lower() == "cropped"]
    found, odd = [], []
    for folder in folders:
        for entry in os.scandir(folder):
            path = Path(entry.path)
            if not entry.is_file() or path.suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            if m := _CELL_RE.match(path.stem):
                found.append((path, "isolated", normalize_field(m[1]), normalize_cell(m[2])))
            elif m := _FIELD_RE.match(path.stem):
                found.append((path, "multi", normalize_field(m[1]), None))
            else:
                odd.append(path.name)
    if odd:
        warnings.warn(
            f"Ignored {len(odd)} image(s) in {str(class_dir)!r} whose names are not NNN_MM.<ext> (cell MM "
            f"of field NNN) or NNN.<ext> (field image), e.g. {odd[:3]}. Rename them to be loaded.",
            stacklevel=3,
        )
    return found


def _check_file(path: Path) -> str | None:
    """Cheap index-time check: header parse plus Pillow's ``verify`` (no pixel decoding)."""
    try:
        with Image.open(path) as image:
            image.verify()
    except Exception as e:  # noqa: BLE001 - any failure means the file is unusable
        return f"{type(e).__name__}: {e}"
    return None


class SIPaKMeD(Dataset):
    """SIPaKMeD cervical-cell images with the five classes in ``SIPAKMED_CLASSES`` order.

    Research use only, not for clinical diagnosis.

    SIPaKMeD (Plissiti et al., "SIPaKMeD: a new dataset for feature and image based classification
    of normal and pathological cervical cells in Pap smear images", IEEE ICIP 2018; download:
    https://www.cs.uoi.gr/~marina/sipakmed.html; cite the paper) holds 4049 isolated cells cropped
    from 966 Pap-smear field images:

    ==============================  ==============  ============
    label, class                    isolated cells  field images
    ==============================  ==============  ============
    0 Dyskeratotic                  813             223
    1 Koilocytotic                  825             238
    2 Metaplastic                   793             271
    3 Parabasal                     787             108
    4 Superficial-Intermediate      831             126
    ==============================  ==============  ============

    Expected tree (the official one; the variants listed are also read)::

        <root>/im_Dyskeratotic/im_Dyskeratotic/CROPPED/001_01.bmp  cell 01 of field image 001
        <root>/im_Dyskeratotic/im_Dyskeratotic/001.bmp             field image 001 (kind="multi")
        ... one such folder per class

    Also accepted: ``im_<Class>/CROPPED/NNN_MM.ext`` and ``im_<Class>/NNN.ext`` (single nesting),
    plain class folders ``<Class>/NNN_MM.ext``, class folder names in any case, and any extension
    Pillow opens (.bmp .png .jpg .jpeg .webp .tif .tiff ...). Other files (the official .dat
    feature files) are ignored; images with other names are ignored with a warning.

    Splits: by default the shipped split file (grouped by field image, stratified per class, about
    70/20/10; see :mod:`cervattn.data.splits`) assigns each image a split. Rows are matched to files
    by ``(kind, class, field, cell)``, whatever the extension or layout. A field image absent from
    the file takes the split of its field's cells. Listed images that are not found are counted in
    ``missing`` with one warning; found images that are not listed are counted in ``unlisted`` and
    are in no split.

    Corrupt files: each selected file is checked when the dataset is built (Pillow header parse
    and ``verify()``, no pixel decoding: about 0.3 ms a file, 1 s for the 3,682 real images, while
    decoding them takes about 6 s). A file that fails raises an ``OSError`` naming it, or with
    ``on_error="skip"`` is left out, counted in ``skipped`` and reported in one warning. Damage
    only full decoding reveals (a truncated pixel stream) raises an ``OSError`` naming the file
    when the image is loaded.

    Args:
        root: Folder holding the five class folders.
        kind: ``"isolated"`` (single-cell crops) or ``"multi"`` (whole field images).
        split: ``None`` (every image found), ``"train"``, ``"val"``, ``"test"``, or a sequence of
            them (their union).
        transform: Callable applied to the PIL RGB image, e.g. :func:`cervattn.data.eval_transform`.
        splits: Split file path (default: the shipped SIPaKMeD split), rows from
            :func:`~cervattn.data.splits.load_splits`, or ``None`` for no split file (then only
            ``split=None`` is allowed).
        on_error: ``"raise"`` or ``"skip"`` for files that fail the index-time check.
        cache: A :class:`cervattn.data.cache.DecodedCache` to keep decoded images in memory (and
            optionally on disk), or ``None`` to decode on every access.

    Attributes:
        samples: List of :class:`Sample` ``(path, label, class_name, field, cell, split)``.
        targets: Label index of each sample.
        fields: Field id (``"001"``) of each sample. Ids repeat across classes: group by
            ``groups`` instead.
        groups: ``"<class>/<field>"`` of each sample, the unit that must not cross splits.
        classes: The class names, ``SIPAKMED_CLASSES``; ``class_to_idx`` maps them to labels.
        missing: Number of split-file rows (of this kind and split) with no file under ``root``.
        missing_rows: Those rows.
        unlisted: Number of files found that the split file does not list.
        skipped: Number of files left out by ``on_error="skip"``; ``skipped_files`` has
            ``(path, reason)`` pairs.

    ``dataset[i]`` returns ``(image, label)``: ``image`` is a PIL RGB image, or ``transform(image)``
    (for example a float tensor of shape ``(3, H, W)``), ``label`` an int.

    Raises:
        FileNotFoundError: ``root`` lacks the expected tree (the message shows it), or the
            selection is empty (the message names root, split and the number of rows expected).
        ValueError: Unknown ``kind``, ``split`` or ``on_error``, a split without a split file, or
            the same image present twice (two extensions or two layouts).
        OSError: A file fails the index-time check and ``on_error="raise"``.

    Examples:
        >>> from cervattn.data import SIPaKMeD, train_transform
        >>> train = SIPaKMeD("~/data/sipakmed", split="train", transform=train_transform(model))
        >>> image, label = train[0]
        >>> len(train), train.classes[label]
        (2795, 'Dyskeratotic')
    """

    notice = RESEARCH_USE_NOTICE

    def __init__(
        self,
        root: str | os.PathLike,
        kind: str = "isolated",
        split: str | Sequence[str] | None = None,
        transform: Callable[[Image.Image], Any] | None = None,
        splits: str | os.PathLike | Sequence[SplitRow] | None = DEFAULT_SPLITS_PATH,
        on_error: str = "raise",
        cache: Any | None = None,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(
                f"kind={kind!r} is not one of {KINDS}; use 'isolated' for cells, 'multi' for fields."
            )
        if on_error not in _ON_ERROR:
            raise ValueError(f"on_error={on_error!r} is not one of {_ON_ERROR}.")
        self.root = Path(root).expanduser()
        self.kind, self.transform, self.on_error, self.cache = kind, transform, on_error, cache
        self.split = split
        wanted = self._wanted_splits(split, splits)
        self.classes = list(SIPAKMED_CLASSES)
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

        found: dict[tuple, Path] = {}
        for cls, folder in _class_dirs(self.root).items():
            for path, file_kind, field, cell in _scan(folder):
                key = (file_kind, cls, field, cell)
                if key in found:
                    raise ValueError(
                        f"The same SIPaKMeD image is present twice: {str(found[key])!r} and {str(path)!r} "
                        f"({file_kind}, {cls}, field {field}, cell {cell}). Remove one of them."
                    )
                found[key] = path

        rows = [] if splits is None else (load_splits(splits) if _is_path(splits) else list(splits))
        split_of = {r.key: r.split for r in rows}
        field_split = {(r.label, r.field): r.split for r in rows if r.kind == "isolated"}
        self.missing_rows = [
            r for r in rows if r.kind == kind and r.key not in found and (wanted is None or r.split in wanted)
        ]
        self.missing = len(self.missing_rows)

        self.samples: list[Sample] = []
        self.skipped_files: list[tuple[Path, str]] = []
        self.unlisted = 0
        for key, path in sorted(found.items(), key=lambda kv: (_sort_key(kv[0]), str(kv[1]))):
            file_kind, cls, field, cell = key
            if file_kind != kind:
                continue
            file_split = split_of.get(key) or (field_split.get((cls, field)) if kind == "multi" else None)
            self.unlisted += bool(rows) and file_split is None
            if wanted is not None and file_split not in wanted:
                continue
            problem = _check_file(path)
            if problem is not None:
                if on_error == "raise":
                    raise OSError(
                        f"Unreadable image {str(path)!r} ({problem}). Re-download or delete it, or pass "
                        "on_error='skip' to leave such files out (they are counted in dataset.skipped)."
                    )
                self.skipped_files.append((path, problem))
                continue
            self.samples.append(Sample(path, self.class_to_idx[cls], cls, field, cell, file_split))
        self.skipped = len(self.skipped_files)
        self._warn_and_check(rows, wanted)
        _logger.info("%r", self)

    @staticmethod
    def _wanted_splits(split, splits) -> frozenset[str] | None:
        if split is None:
            return None
        wanted = frozenset([split] if isinstance(split, str) else split)
        if not wanted or not wanted <= set(SPLIT_NAMES):
            raise ValueError(
                f"split={split!r} is not accepted: use None (every image), one of {SPLIT_NAMES}, or a "
                "sequence of them such as ('train', 'val')."
            )
        if splits is None:
            raise ValueError(
                f"split={split!r} needs a split file, but splits=None. Leave splits at its default "
                "(the shipped SIPaKMeD split), pass a split CSV, or use split=None for every image."
            )
        return wanted

    def _warn_and_check(self, rows: list[SplitRow], wanted: frozenset[str] | None) -> None:
        where = f"root={str(self.root)!r}, kind={self.kind!r}, split={self.split!r}"
        if not self.samples:
            raise FileNotFoundError(
                f"No SIPaKMeD images selected ({where}): the split file lists {self.missing} such image(s) "
                f"that are not under root, and {self.skipped} were skipped as unreadable. Check root, kind "
                "and split; a copy with held-out test cells has no split='test' (evaluate on 'val')."
            )
        if self.skipped:
            names = [str(p) for p, _ in self.skipped_files[:3]]
            warnings.warn(
                f"Skipped {self.skipped} unreadable image(s) ({where}), e.g. {names}; see dataset.skipped_files.",
                stacklevel=3,
            )
        if self.missing:
            listed = sum(r.kind == self.kind and (wanted is None or r.split in wanted) for r in rows)
            warnings.warn(
                f"{self.missing} of {listed} images listed in the split file for {where} were not found "
                f"(e.g. {self.missing_rows[0].path!r}): this copy of the dataset lacks them (some copies hold "
                "the test cells out). See dataset.missing_rows.",
                stacklevel=3,
            )
        if self.unlisted and wanted is not None:
            warnings.warn(
                f"{self.unlisted} image(s) under {str(self.root)!r} are not in the split file and are in no "
                "split; use split=None to include them.",
                stacklevel=3,
            )

    @property
    def targets(self) -> list[int]:
        return [s.label for s in self.samples]

    @property
    def fields(self) -> list[str]:
        return [s.field for s in self.samples]

    @property
    def groups(self) -> list[str]:
        return [f"{s.class_name}/{s.field}" for s in self.samples]

    def __len__(self) -> int:
        return len(self.samples)

    def load_image(self, index: int) -> Image.Image:
        """Return image ``index`` as a PIL RGB image, before ``transform`` (through the cache if any)."""
        path = self.samples[index].path
        if self.cache is not None:
            return Image.fromarray(self.cache.get(path, loader=load_rgb))
        return load_rgb(path)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        image = self.load_image(index)
        if self.transform is not None:
            image = self.transform(image)
        return image, self.samples[index].label

    def preload(self, progress: bool = False) -> None:
        """Decode every image into ``cache`` now, e.g. before forking DataLoader workers.

        Args:
            progress: Show a tqdm progress bar (needs ``pip install tqdm``).

        Raises:
            ValueError: The dataset has no cache.
        """
        if self.cache is None:
            raise ValueError("preload() needs a cache: build the dataset with cache=DecodedCache(...).")
        self.cache.preload([s.path for s in self.samples], loader=load_rgb, progress=progress)

    def __repr__(self) -> str:
        return (
            f"SIPaKMeD(root={str(self.root)!r}, kind={self.kind!r}, split={self.split!r}, n={len(self)}, "
            f"missing={self.missing}, skipped={self.skipped}, unlisted={self.unlisted})"
        )


def _is_path(value: Any) -> bool:
    return isinstance(value, (str, os.PathLike))


def _sort_key(key: tuple) -> tuple:
    kind, cls, field, cell = key
    return (SIPAKMED_CLASSES.index(cls), int(field), int(cell or 0))
