"""SIPaKMeD data: the dataset, its shipped split, split builders, transforms and a decoded-image cache.

Research use only, not for clinical diagnosis.
"""

from cervattn.data.cache import DecodedCache
from cervattn.data.sipakmed import EXPECTED_TREE, IMAGE_EXTENSIONS, Sample, SIPaKMeD, load_rgb, to_rgb
from cervattn.data.splits import (
    DEFAULT_SPLITS_PATH,
    SplitRow,
    grouped_stratified_split,
    load_splits,
    random_split_indices,
)
from cervattn.data.transforms import (
    BackgroundRotation,
    RandomRot90,
    eval_transform,
    resolve_cfg,
    train_transform,
)

__all__ = [
    "DEFAULT_SPLITS_PATH",
    "EXPECTED_TREE",
    "IMAGE_EXTENSIONS",
    "BackgroundRotation",
    "DecodedCache",
    "RandomRot90",
    "SIPaKMeD",
    "Sample",
    "SplitRow",
    "eval_transform",
    "grouped_stratified_split",
    "load_rgb",
    "load_splits",
    "random_split_indices",
    "resolve_cfg",
    "to_rgb",
    "train_transform",
]
