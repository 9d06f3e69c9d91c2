"""The shipped SIPaKMeD split file and the split builders."""

from collections import Counter

import numpy as np
import pytest

from cervattn.constants import SIPAKMED_CLASSES
from cervattn.data.splits import (
    DEFAULT_SPLITS_PATH,
    grouped_stratified_split,
    load_splits,
    random_split_indices,
)


def test_shipped_split_file_is_packaged_and_complete():
    assert DEFAULT_SPLITS_PATH.name == "sipakmed_splits.csv"
    rows = load_splits()
    isolated = [r for r in rows if r.kind == "isolated"]
    assert Counter(r.split for r in isolated) == {"train": 2795, "val": 826, "test": 428}
    assert [sum(r.label == c for r in isolated) for c in SIPAKMED_CLASSES] == [813, 825, 793, 787, 831]
    assert len({r.key for r in rows}) == len(rows)
    split_of_field = {}
    for r in isolated:  # grouped: every cell of a field image has that field's split
        assert split_of_field.setdefault((r.label, r.field), r.split) == r.split
    assert rows[0].field == "001" and rows[0].cell == "01"


def test_load_splits_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        load_splits(tmp_path / "nope.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("path,kind,label\na.bmp,isolated,Dyskeratotic\n")
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['field', 'split'\]"):
        load_splits(bad)
    bad.write_text("path,kind,label,field,split\nx/001_01.bmp,isolated,Normal,001,train\n")
    with pytest.raises(ValueError, match="line 2: label 'Normal' is not one of"):
        load_splits(bad)


def _synthetic(seed=0, n_groups=60, n_classes=5):
    rng = np.random.default_rng(seed)
    labels, groups = [], []
    for c in range(n_classes):
        for g in range(n_groups):
            size = int(rng.integers(1, 7))
            labels += [c] * size
            groups += [f"{c}/{g:03d}"] * size
    return np.array(labels), np.array(groups)


def test_grouped_split_is_a_grouped_stratified_partition():
    labels, groups = _synthetic()
    parts = grouped_stratified_split(labels, groups, fractions=(0.7, 0.2, 0.1), seed=0)
    assert sorted(np.concatenate(parts).tolist()) == list(range(len(labels)))
    owners = {}
    for s, idx in enumerate(parts):
        for g in set(groups[idx]):
            assert owners.setdefault(g, s) == s, f"group {g} is in two splits"
    for c in range(5):
        n_c = (labels == c).sum()
        for frac, idx in zip((0.7, 0.2, 0.1), parts, strict=True):
            assert abs((labels[idx] == c).sum() / n_c - frac) < 0.04


def test_grouped_split_is_deterministic_per_seed():
    labels, groups = _synthetic()
    a = grouped_stratified_split(labels, groups, seed=3)
    b = grouped_stratified_split(list(labels), list(groups), seed=3)
    c = grouped_stratified_split(labels, groups, seed=4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[1], c[1])


def test_grouped_split_rejects_bad_input():
    with pytest.raises(ValueError, match="summing to 1"):
        grouped_stratified_split([0, 1], ["a", "b"], fractions=(0.7, 0.2))
    with pytest.raises(ValueError, match="2 labels and 3 groups"):
        grouped_stratified_split([0, 1], ["a", "b", "c"])


def test_random_split_counts_stratification_and_determinism():
    parts = random_split_indices(10, (0.7, 0.2, 0.1), seed=0)
    assert [len(p) for p in parts] == [7, 2, 1]
    assert sorted(np.concatenate(parts).tolist()) == list(range(10))
    labels = np.repeat([0, 1, 2], [50, 30, 20])
    parts = random_split_indices(labels, seed=1)
    assert [np.bincount(labels[p], minlength=3).tolist() for p in parts] == [
        [35, 21, 14],
        [10, 6, 4],
        [5, 3, 2],
    ]
    again = random_split_indices(labels, seed=1)
    assert all(np.array_equal(x, y) for x, y in zip(parts, again, strict=True))
    with pytest.raises(ValueError, match="negative"):
        random_split_indices(-1)
