"""The release table: every set of cervattn weights published on the Hugging Face Hub.

A release is one ``arch.tag`` (timm's grammar; the tag says what the weights were trained on, e.g.
``rcan_densenet121.sipakmed_cells``) stored in the Hub repository ``cervattn/<arch>.<tag>`` as
``config.json`` (timm's format), ``model.safetensors``, ``README.md`` (the model card) and
``evaluation.json``. Its entry records the sha256 of every file and the Hub commit that holds
them, so that :mod:`cervattn.hub` can check what it loads, wherever the file came from (a mirror
folder, the Hugging Face cache or a fresh download).

Adding a release is one entry in :data:`RELEASES`, pasted from the output of ``cervattn export``
and completed with the commit hash printed by ``cervattn publish``::

    Release(
        name="rcan_densenet121.sipakmed_cells",
        sha256={"model.safetensors": "9f2c...", "config.json": "41d0...", "README.md": "...",
                "evaluation.json": "..."},
        revision="5c1d0a...",  # 40-hex Hub commit
        split="SIPaKMeD cells, cervattn grouped split: trained on train, checkpoint chosen on val, "
              "metrics on test",
        cfg={"input_size": (3, 224, 224)},
    )

The table order matters: the first release of an architecture is its default tag (what
``create_model("rcan_densenet121", pretrained=True)`` loads), so list the best weights first.
Releases of cervattn's own architectures are also spliced into their ``default_cfgs`` (before the
ImageNet-start tags) so that timm's registry knows them; releases of timm's own architectures (the
seed paper's ``resnet50`` and ``densenet121`` baselines) are reached through
``cervattn.create_model`` only, and timm's entries are left untouched.

Research use only, not for clinical diagnosis.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

from timm.models import PretrainedCfg

from .constants import HUB_ORG, RESEARCH_USE_NOTICE, SIPAKMED_CLASSES

__all__ = [
    "Release",
    "RELEASES",
    "WEIGHTS_FILE",
    "get_release",
    "list_releases",
    "register_release",
    "unregister_release",
    "temporary_release",
    "release_pretrained_cfg",
    "release_cfgs",
    "weights_cfg",
]

#: Name of the weight file in every release (the only file a model load needs).
WEIGHTS_FILE = "model.safetensors"

_NAME = re.compile(r"^[a-z][a-z0-9_]*\.[a-z0-9][a-z0-9_]*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_CFG_FIELDS = frozenset(f.name for f in fields(PretrainedCfg))
_PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".pkl", ".pickle", ".ckpt", ".tar")

#: Pretrained-cfg fields that describe where weights come from or what another checkpoint held;
#: a release replaces all of them.
_SOURCE_FIELDS = (
    "url", "file", "state_dict", "hf_hub_id", "hf_hub_filename", "source", "tag", "custom_load",
    "test_input_size", "test_crop_pct", "test_pool_size", "label_offset", "label_descriptions",
    "origin_url", "description",
)  # fmt: skip


@dataclass(frozen=True)
class Release:
    """One released set of weights: ``arch.tag``, file hashes, Hub revision and what it was trained on.

    Args:
        name: ``"<arch>.<tag>"``, e.g. ``"rcan_densenet121.sipakmed_cells"``; ``arch`` is a timm
            model name (cervattn's or timm's own), ``tag`` says what the weights were trained on.
        sha256: ``{filename: sha256 hex}`` of every file of the Hub repository; must include
            ``"model.safetensors"``. Printed by ``cervattn export``.
        revision: The 40-hex Hub commit holding these files (printed by ``cervattn publish``);
            ``None`` until published, then ``"main"`` is downloaded and still checked by sha256.
        dataset: The training data, e.g. ``"SIPaKMeD"``.
        split: Which split trained, selected and evaluated the weights, in words.
        cfg: Pretrained-cfg overrides describing how the weights expect their input:
            ``input_size``, ``crop_pct``, ``interpolation``, ``mean``, ``std``, ``label_names``...
        description: One sentence for listings; default built from ``dataset`` and ``split``.
        metrics: Headline numbers of the ``evaluation.json`` beside the weights, as fractions:
            ``accuracy``, ``weighted_f1``, ``macro_f1`` and ``field_accuracy`` (cell predictions
            voted per field image), on ``metrics_split``. Printed by ``cervattn export``, listed by
            ``cervattn models --releases``; the tests check them against ``evaluation.json``.
        metrics_split: The split ``metrics`` were measured on, e.g. ``"val"``.
        license: SPDX-style licence id of the weights.
        repo_id: Hub repository; default ``"cervattn/<name>"``.

    Raises:
        ValueError: A field is malformed (the message says which and what is accepted).
    """

    name: str
    sha256: Mapping[str, str]
    revision: str | None = None
    dataset: str = "SIPaKMeD"
    split: str = ""
    cfg: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    metrics: Mapping[str, float] = field(default_factory=dict)
    metrics_split: str = ""
    license: str = "apache-2.0"
    repo_id: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(
                f"Release name {self.name!r} is not accepted: give '<arch>.<tag>' in lower case, e.g. "
                "'rcan_densenet121.sipakmed_cells'."
            )
        hashes = {str(k): str(v).lower() for k, v in dict(self.sha256).items()}
        if WEIGHTS_FILE not in hashes:
            raise ValueError(
                f"Release {self.name!r} lists no sha256 for {WEIGHTS_FILE!r} (got {sorted(hashes)}); paste "
                "the sha256 lines printed by `cervattn export`."
            )
        for filename, digest in hashes.items():
            if not _SHA256.match(digest):
                raise ValueError(
                    f"Release {self.name!r}: sha256 of {filename!r} is {digest!r}, not 64 hex digits; paste "
                    "the value printed by `cervattn export` or `sha256sum`."
                )
            if filename.lower().endswith(_PICKLE_SUFFIXES):
                raise ValueError(
                    f"Release {self.name!r} lists the pickle file {filename!r}; cervattn releases hold "
                    "safetensors weights only. Re-export with `cervattn export`."
                )
        unknown = sorted(set(self.cfg) - _CFG_FIELDS)
        if unknown:
            raise ValueError(
                f"Release {self.name!r}: cfg keys {unknown} are not timm PretrainedCfg fields; accepted "
                "include input_size, crop_pct, interpolation, mean, std, label_names, num_classes."
            )
        if self.revision is not None and not _COMMIT.match(str(self.revision)):
            raise ValueError(
                f"Release {self.name!r}: revision {self.revision!r} is not a 40-hex commit hash; pin the "
                "commit printed by `cervattn publish` (a branch name can move), or None before publishing."
            )
        bad = {k: v for k, v in dict(self.metrics).items() if not isinstance(v, (int, float)) or not 0 <= v <= 1}
        if bad:
            raise ValueError(
                f"Release {self.name!r}: metrics {bad} are not fractions in [0, 1]; paste the `metrics=` line "
                "printed by `cervattn export` (e.g. {'accuracy': 0.937})."
            )
        if self.metrics and not self.metrics_split:
            raise ValueError(f"Release {self.name!r} has metrics but no metrics_split; say which split, e.g. 'val'.")
        object.__setattr__(self, "metrics", MappingProxyType({k: float(v) for k, v in dict(self.metrics).items()}))
        object.__setattr__(self, "sha256", MappingProxyType(hashes))
        object.__setattr__(self, "cfg", MappingProxyType(dict(self.cfg)))
        if not self.repo_id:
            object.__setattr__(self, "repo_id", f"{HUB_ORG}/{self.name}")
        if not self.description:
            object.__setattr__(
                self, "description", f"Trained on {self.dataset}" + (f" ({self.split})." if self.split else ".")
            )

    @property
    def arch(self) -> str:
        """The architecture, e.g. ``"rcan_densenet121"``."""
        return self.name.split(".", 1)[0]

    @property
    def tag(self) -> str:
        """The pretrained tag, e.g. ``"sipakmed_cells"``."""
        return self.name.split(".", 1)[1]


_GROUPED_VAL = "cervattn grouped split (by field image): trained on train, best epoch selected on val, evaluated on val"
_CELLS_64 = {"input_size": (3, 64, 64), "crop_pct": 1.0, "interpolation": "bicubic",
             "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}

#: The released weights, best first per architecture (see the module docstring for the shape of an entry).
RELEASES: tuple[Release, ...] = (
    Release(
        name="rcan_densenet121.sipakmed_cells_64_e48",
        sha256={
            "README.md": "6d91111343a297eaf826e5cce84bf31364d1a5bb785051c4b39939ff36a8e1f7",
            "config.json": "b503d8356ed0e26439770d107ffae8bff3dafca4cb16f5140653c931cbce2dc6",
            "evaluation.json": "e0e7b75209c65f0cb67a6214c015bd632142183eb383d48371f45a1eab41d2c0",
            "model.safetensors": "ad70e0fd17880ec4db2919fb97a584f154b8cfc20785098d88c4c3a893d6a6d8",
            "training_curves.png": "6f24c811dd8a12c20c2cb61c16995363ecf454f9a7b18db6cefbee9df2c28179",
        },
        revision=None,  # not yet on the Hub: loaded from the checkout's hub/ folder
        dataset="SIPaKMeD",
        split=_GROUPED_VAL,
        cfg=_CELLS_64,
        metrics={"accuracy": 0.947942, "weighted_f1": 0.947695, "macro_f1": 0.947981, "field_accuracy": 0.982759},
        metrics_split="val",
    ),
    Release(
        name="rcan_densenet121.sipakmed_cells_64",
        sha256={
            "README.md": "48c7b5622ca29b7c053f819e4617b0c0563411adae322e1c30c51e3591090711",
            "config.json": "877631445384955e25e06bc539d9818a84fe31a93f4129e79d1a0c06c5418396",
            "evaluation.json": "9e1e6cb38ccb38bad2c76011c7457285225513212778b824258f1cacd8b5609b",
            "model.safetensors": "6029f345d6dcd4c767448ef63c74cb956794c9706f4129da3211de4d4d0534de",
            "training_curves.png": "3caa50b92c0c64fdb76665172d814c3c116d0172ccd2d875b96dc77f4ba16836",
        },
        revision=None,  # not yet on the Hub: loaded from the checkout's hub/ folder
        dataset="SIPaKMeD",
        split=_GROUPED_VAL,
        cfg=_CELLS_64,
        metrics={"accuracy": 0.937046, "weighted_f1": 0.937176, "macro_f1": 0.9374, "field_accuracy": 0.965517},
        metrics_split="val",
    ),
    Release(
        name="densenet121.sipakmed_cells_64",
        sha256={
            "README.md": "e9a0ee16b9564d02325b01e308b0c33e0ce56ec6ce4fd69899d506c6302bfae9",
            "config.json": "3d197afb3ca35608c7d13d16364cdf7ec27d9236a3b412c59b6fc4441a8a11ad",
            "evaluation.json": "7cf74bed8da8961e8574617c988774077f7b5b851c55ec3f857490c1c62aef80",
            "model.safetensors": "1fffbb39993db91af361447faf9c80d0f2113ebb5731e30af7bd035621383d67",
            "training_curves.png": "8f679eb3410caae0a1f68c3283a31148c002603d67cab6515147e86214b33f2e",
        },
        revision=None,  # not yet on the Hub: loaded from the checkout's hub/ folder
        dataset="SIPaKMeD",
        split=_GROUPED_VAL,
        cfg=_CELLS_64,
        metrics={"accuracy": 0.940678, "weighted_f1": 0.940671, "macro_f1": 0.940836, "field_accuracy": 0.965517},
        metrics_split="val",
    ),
    Release(
        name="resnet50.sipakmed_cells_64",
        sha256={
            "README.md": "65806658ea1f0bb44a6aa08765950698ee92064755bbb45a323cd4dd0ab85a21",
            "config.json": "5f10ffd30b1f08e29ecb47a30fb88709d5d14c06fb4b9a368665a1f19f36963e",
            "evaluation.json": "5161e25ecff501e30be9545050aa4751d71145c97a53d173ef5f6f2db70fc4cf",
            "model.safetensors": "faaac7d7e887e14529856fe36f0d19966daae9ee3cc030b6b23cd1e742a1e5c2",
            "training_curves.png": "18c1f79c86ba8078e77c5ab1da404235944b1f6d04b300aa88d866ac232d40c2",
        },
        revision=None,  # not yet on the Hub: loaded from the checkout's hub/ folder
        dataset="SIPaKMeD",
        split=_GROUPED_VAL,
        cfg=_CELLS_64,
        metrics={"accuracy": 0.900726, "weighted_f1": 0.901501, "macro_f1": 0.901683, "field_accuracy": 0.942529},
        metrics_split="val",
    ),
    Release(
        name="ran_resnet50.sipakmed_cells_64",
        sha256={
            "README.md": "9837664ee31b0872cae0318018a4e4869ce551063dc1d5f4e6c9b6883f66300c",
            "config.json": "156ef6ab6cebfea118b808f3d4f282c25c3604c9340fc423c9b9b0900c894ca6",
            "evaluation.json": "92f335931d167db963f5e0b7fa371c222e245e4195b0ee7a10a303ec77fa909d",
            "model.safetensors": "0ed007e9dc4731af57da816af78be3c623e65b2d23261ad5ee9ac8ad810f4dfe",
            "training_curves.png": "55db66dda225b80ef22ad8340600f12bee03f4c3b7a99f4989520462549300f9",
        },
        revision=None,  # not yet on the Hub: loaded from the checkout's hub/ folder
        dataset="SIPaKMeD",
        split=_GROUPED_VAL,
        cfg=_CELLS_64,
        metrics={"accuracy": 0.924939, "weighted_f1": 0.925023, "macro_f1": 0.925243, "field_accuracy": 0.954023},
        metrics_split="val",
    ),
)

_registry: dict[str, Release] = {r.name: r for r in RELEASES}


def get_release(name: str) -> Release | None:
    """The release named ``"arch.tag"``, or ``None`` when there is none."""
    return _registry.get(name)


def list_releases(arch: str | None = None) -> list[Release]:
    """Every release (of ``arch`` only, when given), in table order: the first is the default."""
    return [r for r in _registry.values() if arch is None or r.arch == arch]


def register_release(release: Release, replace: bool = False) -> None:
    """Add ``release`` to the table at run time (``cervattn.create_model`` and ``list_pretrained``
    see it; timm's own registry knows only the entries of :data:`RELEASES` at import).

    Raises:
        TypeError: ``release`` is not a :class:`Release`.
        ValueError: A release of that name exists and ``replace`` is false.
    """
    if not isinstance(release, Release):
        raise TypeError(f"Expected a cervattn.releases.Release, got {type(release).__name__}.")
    if release.name in _registry and not replace:
        raise ValueError(f"Release {release.name!r} is already registered; pass replace=True to replace it.")
    _registry[release.name] = release


def unregister_release(name: str) -> None:
    """Remove the release ``name`` from the run-time table (no error when absent)."""
    _registry.pop(name, None)


@contextmanager
def temporary_release(release: Release) -> Iterator[Release]:
    """Register ``release`` for the duration of a ``with`` block (tests, trying a fresh export).

    Examples:
        >>> from cervattn.releases import Release, temporary_release
        >>> with temporary_release(Release("test_rcan_densenet.demo", {"model.safetensors": "0" * 64})):
        ...     pass
    """
    previous = _registry.get(release.name)
    register_release(release, replace=True)
    try:
        yield release
    finally:
        if previous is None:
            _registry.pop(release.name, None)
        else:
            _registry[release.name] = previous


def release_pretrained_cfg(release: Release, base: Mapping[str, Any]) -> dict[str, Any]:
    """The timm pretrained cfg of ``release``: the architecture's ``base`` cfg, its weight-source
    and test-time fields dropped, then SIPaKMeD defaults (five classes, ``crop_pct`` 1.0), the
    release's hub id, tag, licence, description and its own ``cfg`` overrides.

    Args:
        release: The release.
        base: The architecture's default cfg (a dict), which supplies ``first_conv``,
            ``classifier``, ``interpolation``, ``mean``/``std`` and ``input_size`` unless the
            release overrides them.
    """
    return weights_cfg(base, release.name, release.repo_id, release.license, release.description, release.cfg)


def weights_cfg(
    base: Mapping[str, Any],
    name: str,
    repo_id: str,
    license: str,
    description: str,
    overrides: Mapping[str, Any],
) -> dict[str, Any]:
    """The pretrained cfg of SIPaKMeD weights ``name`` (``arch.tag``) in ``repo_id``: ``base`` without
    its source fields, SIPaKMeD defaults, then ``overrides`` (see :func:`release_pretrained_cfg`)."""
    arch, _, tag = name.partition(".")
    cfg = {k: v for k, v in dict(base).items() if k not in _SOURCE_FIELDS}
    cfg.update(
        hf_hub_id=repo_id,
        architecture=arch,
        tag=tag,
        num_classes=len(SIPAKMED_CLASSES),
        label_names=SIPAKMED_CLASSES,
        crop_pct=1.0,
        license=license,
        description=description,
        paper_name="Towards Interpretable Attention Networks for Cervical Cancer Analysis",
        paper_ids="arXiv:2106.00557",
        notes=(RESEARCH_USE_NOTICE,),
    )
    cfg.update(dict(overrides))
    if "label_names" in overrides and "num_classes" not in overrides:
        cfg["num_classes"] = len(cfg["label_names"])
    return cfg


def release_cfgs(base: Mapping[str, Any], archs: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``{"arch.tag": cfg}`` of every release of ``archs``, for a model file's ``default_cfgs``.

    Splice it in first (``generate_default_cfgs({**release_cfgs(_cfg(), ARCHS), ...})``) so a
    released tag becomes the architecture's default, ahead of the ImageNet-start tags.
    """
    names = set(archs)
    return {r.name: release_pretrained_cfg(r, base) for r in RELEASES if r.arch in names}
