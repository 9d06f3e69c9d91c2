"""Train/val/test splits: the shipped SIPaKMeD split file and split builders for any dataset.

The shipped split (``sipakmed_splits.csv``) is grouped by field image: every cell cut from one
SIPaKMeD field image, and field images linked by a near-duplicate cell pair, share a split, so no
cell leaks between train and test. It is stratified per class, about 70/20/10 of the cells
(train 2795, val 826, test 428 isolated cells).

:func:`grouped_stratified_split` builds such a split for any dataset with group ids (field images,
patients, slides). :func:`random_split_indices` reproduces the ungrouped random split of the seed
paper for comparison only: cells of one field image land in both train and test, which inflates
test scores.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from cervattn.constants import SIPAKMED_CLASSES

__all__ = [
    "DEFAULT_SPLITS_PATH",
    "KINDS",
    "SPLIT_NAMES",
    "SplitRow",
    "grouped_stratified_split",
    "load_splits",
    "random_split_indices",
]

#: The split file shipped with cervattn (a copy of the developer copy's ``splits.csv``).
DEFAULT_SPLITS_PATH = Path(__file__).with_name("sipakmed_splits.csv")
SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")
KINDS: tuple[str, ...] = ("isolated", "multi")
_REQUIRED_COLUMNS = ("path", "kind", "label", "field", "split")


class SplitRow(NamedTuple):
    """One image listed in a split file.

    Attributes:
        path: Path as written in the file (relative to the dataset root; its extension may differ
            from the user's files, rows are matched by ``key`` instead).
        kind: ``"isolated"`` (one cell) or ``"multi"`` (a whole field image).
        label: Class name, one of ``SIPAKMED_CLASSES``.
        field: Field image id, three digits (``"001"``).
        cell: Cell id within the field, two digits (``"01"``), ``None`` for field images.
        split: ``"train"``, ``"val"`` or ``"test"``.
    """

    path: str
    kind: str
    label: str
    field: str
    cell: str | None
    split: str

    @property
    def key(self) -> tuple[str, str, str, str | None]:
        """``(kind, label, field, cell)``: identifies the image whatever its extension or layout."""
        return (self.kind, self.label, self.field, self.cell)


def normalize_field(value: str | int) -> str:
    """Return a field id as three digits (``7`` and ``"7"`` both give ``"007"``)."""
    return f"{int(value):03d}"


def normalize_cell(value: str | int) -> str:
    """Return a cell id as two digits (``3`` and ``"3"`` both give ``"03"``)."""
    return f"{int(value):02d}"


def load_splits(path: str | os.PathLike | None = None) -> list[SplitRow]:
    """Read a split file.

    Args:
        path: CSV file with at least the columns ``path, kind, label, field, split`` (the shipped
            file also has ``original_sha256, width, height``). ``None`` reads the shipped
            SIPaKMeD split, :data:`DEFAULT_SPLITS_PATH`.

    Returns:
        One :class:`SplitRow` per listed image, in file order.

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: A column is missing or a row holds an unknown kind, class, split or field id.

    Examples:
        >>> rows = load_splits()
        >>> sum(r.split == "train" and r.kind == "isolated" for r in rows)
        2795
    """
    path = Path(DEFAULT_SPLITS_PATH if path is None else path)
    if not path.is_file():
        raise FileNotFoundError(
            f"Split file {str(path)!r} does not exist. Pass the path of a CSV with the columns "
            f"{', '.join(_REQUIRED_COLUMNS)}, or splits=None to use every image found without a split."
        )
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in _REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(
                f"Split file {str(path)!r} lacks the column(s) {missing}; found {reader.fieldnames}. "
                f"A split file needs the columns {', '.join(_REQUIRED_COLUMNS)} (see the shipped "
                f"{DEFAULT_SPLITS_PATH.name})."
            )
        return [_parse_row(raw, path, line) for line, raw in enumerate(reader, start=2)]


def _parse_row(raw: dict[str, str], path: Path, line: int) -> SplitRow:
    where = f"{str(path)!r} line {line}"
    kind, label, split = raw["kind"].strip(), raw["label"].strip(), raw["split"].strip()
    for name, value, accepted in (
        ("kind", kind, KINDS),
        ("label", label, SIPAKMED_CLASSES),
        ("split", split, SPLIT_NAMES),
    ):
        if value not in accepted:
            raise ValueError(f"{where}: {name} {value!r} is not one of {accepted}; fix the row.")
    stem = Path(raw["path"].strip()).stem
    try:
        field = normalize_field(raw["field"])
        cell = normalize_cell(stem.split("_", 1)[1]) if kind == "isolated" else None
    except (ValueError, IndexError):
        raise ValueError(
            f"{where}: cannot read the field/cell id from field={raw['field']!r}, path={raw['path']!r}. "
            "Isolated cells are named NNN_MM.<ext> (field NNN, cell MM), field images NNN.<ext>."
        ) from None
    return SplitRow(raw["path"].strip(), kind, label, field, cell, split)


def _check_fractions(fractions: Sequence[float]) -> np.ndarray:
    frac = np.asarray(fractions, dtype=float)
    if frac.ndim != 1 or frac.size < 1 or (frac < 0).any() or abs(frac.sum() - 1.0) > 1e-6:
        raise ValueError(
            f"fractions={tuple(fractions)!r} is not accepted: give one non-negative fraction per split, "
            "summing to 1, e.g. (0.7, 0.2, 0.1) for train/val/test."
        )
    return frac


def _as_1d(values, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one value per sample (1-D); got shape {arr.shape}.")
    return arr


def _largest_remainder(n: int, frac: np.ndarray) -> np.ndarray:
    """Split ``n`` items into integer counts proportional to ``frac`` that add up to ``n``."""
    exact = frac * n
    counts = np.floor(exact).astype(int)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: n - counts.sum()]] += 1
    return counts


def grouped_stratified_split(
    labels: Sequence[int] | np.ndarray,
    groups: Sequence | np.ndarray,
    fractions: Sequence[float] = (0.7, 0.2, 0.1),
    seed: int = 0,
) -> list[np.ndarray]:
    """Split sample indices so that no group is in two splits, stratified per class.

    Groups (field images for SIPaKMeD: pass ``dataset.groups``, since field ids repeat across
    classes) are shuffled with ``seed``, then taken largest first and each is given to the split
    that is furthest below its target number of samples for the group's class (the majority label
    of the group). The per-class proportions come out close to ``fractions``; how close depends on
    the group sizes (a class with few large groups cannot be split finely).

    Args:
        labels: Class index (or any hashable label) of each sample.
        groups: Group id of each sample; samples sharing an id always share a split.
        fractions: Fraction of the samples for each split, summing to 1.
        seed: Seed of the shuffle; the same seed gives the same split.

    Returns:
        One sorted int64 index array per fraction (``[train, val, test]`` by default).

    Raises:
        ValueError: Lengths differ, inputs are not 1-D, or fractions do not sum to 1.

    Examples:
        >>> train, val, test = grouped_stratified_split(ds.targets, ds.groups, seed=0)
    """
    labels, groups = _as_1d(labels, "labels"), _as_1d(groups, "groups")
    if len(labels) != len(groups):
        raise ValueError(
            f"labels and groups must have one entry per sample; got {len(labels)} labels and "
            f"{len(groups)} groups."
        )
    frac = _check_fractions(fractions)
    rng = np.random.default_rng(seed)
    _, group_idx = np.unique(groups.astype(str), return_inverse=True)
    _, label_idx = np.unique(labels, return_inverse=True)
    n_groups, n_labels = group_idx.max(initial=-1) + 1, label_idx.max(initial=-1) + 1
    counts = np.zeros((n_groups, n_labels), dtype=np.int64)
    np.add.at(counts, (group_idx, label_idx), 1)
    size, group_label = counts.sum(1), counts.argmax(1)
    # Random order first, then a stable sort by size: ties are broken by the seed.
    order = rng.permutation(n_groups)
    order = order[np.argsort(-size[order], kind="stable")]
    target = frac[None, :] * np.bincount(group_label, weights=size, minlength=n_labels)[:, None]
    filled = np.zeros_like(target)
    assign = np.empty(n_groups, dtype=np.int64)
    for g in order:
        c = group_label[g]
        deficit = target[c] - filled[c]
        deficit[frac == 0] = -np.inf
        s = int(np.argmax(deficit))
        assign[g] = s
        filled[c, s] += size[g]
    sample_split = assign[group_idx]
    return [np.flatnonzero(sample_split == s).astype(np.int64) for s in range(len(frac))]


def random_split_indices(
    n_or_labels: int | Sequence[int] | np.ndarray,
    fractions: Sequence[float] = (0.7, 0.2, 0.1),
    seed: int = 0,
) -> list[np.ndarray]:
    """Ungrouped random split, as in the seed paper: for comparison only, it leaks.

    Cells cut from the same field image (often near-identical neighbours, sometimes the same cell
    twice) end up in both train and test, so test scores measured on such a split are optimistic.
    Use the shipped split or :func:`grouped_stratified_split` for any reported result.

    Args:
        n_or_labels: The number of samples (plain random split) or the label of each sample
            (random split stratified per class).
        fractions: Fraction of the samples for each split, summing to 1; counts are rounded by
            largest remainder so they add up to the number of samples.
        seed: Seed of the shuffle; the same seed gives the same split.

    Returns:
        One sorted int64 index array per fraction.

    Raises:
        ValueError: A negative count, non-1-D labels, or fractions that do not sum to 1.
    """
    frac = _check_fractions(fractions)
    if isinstance(n_or_labels, (int, np.integer)):
        if n_or_labels < 0:
            raise ValueError(f"n_or_labels={n_or_labels} is negative; pass a sample count >= 0 or labels.")
        labels = np.zeros(int(n_or_labels), dtype=np.int64)
    else:
        labels = _as_1d(n_or_labels, "n_or_labels")
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in frac]
    for value in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == value))
        bounds = np.cumsum(_largest_remainder(len(idx), frac))[:-1]
        for s, chunk in enumerate(np.split(idx, bounds)):
            parts[s].append(chunk)
    return [np.sort(np.concatenate(p)).astype(np.int64) if p else np.zeros(0, np.int64) for p in parts]
