"""A decoded-image cache, so CPU training on a small dataset is not bound by image decoding.

Decoding a SIPaKMeD cell (lossless WebP or BMP, about 220x220 px) costs about 1-2 ms; a training
epoch over 2,795 cells spends seconds in the decoder alone, every epoch. :class:`DecodedCache` keeps
each image decoded as a ``uint8`` array (optionally downscaled to a maximum side) in memory, and
optionally as one ``.npy`` file per image in a cache folder that later runs reuse.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["DecodedCache"]

_logger = logging.getLogger(__name__)
_FORMAT_VERSION = 1  # bump when the stored array layout changes: old files are then ignored
_RESAMPLE = {"nearest", "bilinear", "bicubic", "lanczos", "box", "hamming"}


class DecodedCache:
    """Keeps decoded RGB images as ``uint8`` arrays of shape ``(H, W, 3)``, in memory and on disk.

    An entry is keyed by the file's absolute path, size and modification time and by the resize
    settings, so an edited or replaced file is decoded again and a cache folder can be shared by
    runs with different ``max_side``. Disk files are written atomically (temporary file, then
    rename), so an interrupted run or parallel DataLoader workers never leave a half-written entry.
    Stale disk entries are not deleted automatically; :meth:`clear` with ``disk=True`` removes them.

    Memory: the 3,621 real SIPaKMeD train+val cells take about 530 MB at full size; field images
    (up to 2048x1536) take 9.4 MB each, so give ``max_side`` for them.

    With DataLoader workers, each worker fills its own in-memory copy: call
    ``dataset.preload()`` before creating the loader (forked workers then share the arrays), use
    ``persistent_workers=True``, or give ``cache_dir`` so workers read the ``.npy`` files.

    Args:
        max_side: If given, images whose longer side exceeds it are downscaled (aspect kept) before
            caching. Choose it above the training resolution, e.g. ``int(1.25 * img_size)``, so
            random crops are not upscaled.
        cache_dir: Folder for persistent ``.npy`` entries (created if missing); ``None`` keeps
            everything in memory only.
        resample: Pillow filter for the downscaling: "bicubic" (default), "bilinear", "lanczos",
            "box", "hamming" or "nearest".

    Examples:
        >>> cache = DecodedCache(max_side=280, cache_dir="~/.cache/cervattn/decoded")
        >>> ds = SIPaKMeD(root, split="train", transform=train_transform(model), cache=cache)
    """

    def __init__(
        self,
        max_side: int | None = None,
        cache_dir: str | os.PathLike | None = None,
        resample: str = "bicubic",
    ) -> None:
        if max_side is not None and (not isinstance(max_side, int) or max_side < 1):
            raise ValueError(f"max_side={max_side!r} is not accepted: give a positive int (pixels) or None.")
        if resample not in _RESAMPLE:
            raise ValueError(f"resample={resample!r} is not one of {sorted(_RESAMPLE)}.")
        self.max_side, self.resample = max_side, resample
        self.cache_dir = None if cache_dir is None else Path(cache_dir).expanduser()
        if self.cache_dir is not None:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
        self._memory: dict[str, tuple[tuple, np.ndarray]] = {}
        self.hits = self.disk_hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._memory)

    @property
    def nbytes(self) -> int:
        """Bytes held in memory by the cached arrays."""
        return sum(arr.nbytes for _, arr in self._memory.values())

    def _key(self, path: str) -> tuple:
        st = os.stat(path)
        return (path, st.st_size, st.st_mtime_ns, self.max_side, self.resample, _FORMAT_VERSION)

    def _disk_path(self, key: tuple) -> Path:
        digest = hashlib.sha256(repr(key).encode()).hexdigest()[:40]
        return self.cache_dir / f"{digest}.npy"

    def _decode(self, path: str, loader: Callable) -> np.ndarray:
        image = loader(path)
        if self.max_side is not None and max(image.size) > self.max_side:
            scale = self.max_side / max(image.size)
            size = tuple(max(1, round(s * scale)) for s in image.size)
            image = image.resize(size, Image.Resampling[self.resample.upper()])
        if image.mode != "RGB":
            image = image.convert("RGB")
        return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))

    def _read_disk(self, file: Path) -> np.ndarray | None:
        try:
            arr = np.load(file, allow_pickle=False)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:  # damaged entry: decode again and overwrite it
            _logger.warning("Ignoring damaged cache entry %s (%s)", file, e)
            return None
        return arr if arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3 else None

    def _write_disk(self, file: Path, arr: np.ndarray) -> None:
        fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=".tmp-", suffix=".npy")
        try:
            with os.fdopen(fd, "wb") as f:
                np.save(f, arr, allow_pickle=False)
            os.replace(tmp, file)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, path: str | os.PathLike, loader: Callable[[str], Image.Image] | None = None) -> np.ndarray:
        """Return the decoded image at ``path`` as a ``uint8`` array of shape ``(H, W, 3)``.

        Args:
            path: Image file.
            loader: Function that reads a path into a PIL image; default
                :func:`cervattn.data.sipakmed.load_rgb`.

        Returns:
            The cached array. Treat it as read-only: it is shared by later calls.
        """
        if loader is None:
            from cervattn.data.sipakmed import load_rgb as loader
        path = os.path.abspath(os.fspath(path))
        key = self._key(path)
        entry = self._memory.get(path)
        if entry is not None and entry[0] == key:
            self.hits += 1
            return entry[1]
        arr = None
        if self.cache_dir is not None:
            file = self._disk_path(key)
            arr = self._read_disk(file)
            self.disk_hits += arr is not None
        if arr is None:
            self.misses += 1
            arr = self._decode(path, loader)
            if self.cache_dir is not None:
                self._write_disk(file, arr)
        arr.setflags(write=False)
        self._memory[path] = (key, arr)
        return arr

    def preload(
        self,
        paths: Iterable[str | os.PathLike],
        loader: Callable[[str], Image.Image] | None = None,
        progress: bool = False,
    ) -> None:
        """Decode ``paths`` into the cache now (see :meth:`get`).

        Args:
            paths: Image files.
            loader: As in :meth:`get`.
            progress: Show a tqdm progress bar (needs ``pip install tqdm``).
        """
        paths = list(paths)
        if progress:
            try:
                from tqdm.auto import tqdm
            except ImportError:
                raise ImportError("progress=True needs tqdm: pip install tqdm") from None
            paths = tqdm(paths, desc="decoding", unit="img")
        for path in paths:
            self.get(path, loader=loader)

    def clear(self, disk: bool = False) -> None:
        """Empty the in-memory cache; with ``disk=True`` also delete the cache's ``.npy`` entries."""
        self._memory.clear()
        if disk and self.cache_dir is not None:
            for file in self.cache_dir.glob("*.npy"):
                if re.fullmatch(r"[0-9a-f]{40}\.npy", file.name):  # only entries this class wrote
                    file.unlink(missing_ok=True)

    def __repr__(self) -> str:
        return (
            f"DecodedCache(max_side={self.max_side}, cache_dir={self.cache_dir}, entries={len(self)}, "
            f"hits={self.hits}, disk_hits={self.disk_hits}, misses={self.misses})"
        )
