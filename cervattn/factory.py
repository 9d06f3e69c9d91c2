"""``create_model``, ``list_models`` and ``list_pretrained``: cervattn's front door to timm's registry."""

from __future__ import annotations

import difflib
import fnmatch
import os
import re
from collections.abc import Sequence
from typing import Any

import timm
from timm.models import split_model_name_tag
from torch import nn

from . import hub
from .models import TIMM_MODULES, is_cervattn_arch
from .releases import list_releases

__all__ = ["create_model", "list_models", "list_pretrained", "is_cervattn_model"]

def list_models(pattern: str = "", pretrained: bool = False, include_test: bool = False) -> list[str]:
    """Names of cervattn's architectures, sorted.

    Args:
        pattern: Shell-style wildcard, e.g. ``"rcan_*"``; empty for all.
        pretrained: List ``arch.tag`` names of every pretrained tag instead of architectures.
        include_test: Also list the tiny ``test_*`` architectures used by tests and examples.

    Examples:
        >>> import cervattn
        >>> "rcan_densenet121" in cervattn.list_models("rcan_*")
        True
    """
    names = timm.list_models(pattern or "", module=TIMM_MODULES, pretrained=pretrained)
    if not include_test:
        names = [n for n in names if not n.startswith("test_")]
    return names


def list_pretrained(pattern: str = "") -> list[str]:
    """``arch.tag`` names of every pretrained tag of cervattn's models, e.g. ``"ran_resnet50.a1_in1k"``,
    and of every release in :mod:`cervattn.releases` (including the SIPaKMeD weights of timm's
    ``resnet50``/``densenet121`` baselines, e.g. ``"resnet50.sipakmed_cells"``).

    Args:
        pattern: Shell-style wildcard on the full ``arch.tag`` name; empty for all.
    """
    names = set(list_models(pretrained=True, include_test=True)) | {r.name for r in list_releases()}
    return sorted((n for n in names if not pattern or fnmatch.fnmatch(n, pattern)), key=_natural_key)


def _natural_key(name: str) -> list[int | str]:
    """Sort key putting ``resnet18`` before ``resnet101``, as timm lists them."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name.lower())]


def is_cervattn_model(name: str) -> bool:
    """Whether ``name`` (with or without a tag) is one of cervattn's architectures."""
    return is_cervattn_arch(name)


def create_model(
    name: str,
    pretrained: bool = False,
    mirror: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    checkpoint_path: str | os.PathLike | None = None,
    force_download: bool = False,
    verify: bool = True,
    **kwargs: Any,
) -> nn.Module:
    """Create a cervattn model (or any timm model) by name, with verified pretrained weights.

    A released tag (see :mod:`cervattn.releases`, ``cervattn.list_pretrained()``) loads its
    ``model.safetensors`` from a mirror folder, the Hugging Face cache or the Hub, checks its
    sha256 against the release table before loading, then lets timm load it (``in_chans``
    adaptation; the classifier is dropped and re-initialised when ``num_classes`` differs from the
    release's five classes, every other tensor loads strictly). See ``docs/weights.md``.

    Args:
        name: Architecture, optionally with a pretrained tag: ``"rcan_densenet121"`` (its default
            tag: the best release), ``"rcan_densenet121.sipakmed_cells_64"``, ``"ran_resnet50.a1_in1k"``,
            a baseline release such as ``"resnet50.sipakmed_cells"``. Also accepts any timm name,
            ``hf-hub:<org>/<arch>.<tag>[@revision]`` (cervattn releases among them are verified) and
            ``local-dir:<folder>``.
        pretrained: Load the weights of the tag (the architecture's default tag when none is given).
        mirror: Folder(s) of Hub-layout repositories consulted before ``$CERVATTN_MIRROR``, the
            checkout's ``hub/`` folder, the cache and the network.
        revision: Hub revision of the weights; default the release's pinned commit.
        cache_dir: Hugging Face cache folder; default ``$HF_HUB_CACHE``.
        checkpoint_path: Your own ``.safetensors`` or ``.pt``/``.pth`` weights, loaded strictly after
            creation with ``torch.load(weights_only=True)`` (see :func:`cervattn.hub.load_checkpoint`).
        force_download: Download a release afresh, ignoring mirrors and cache.
        verify: Check a release's sha256 (default); ``False`` loads unverified, with a warning.
        **kwargs: timm model arguments: ``num_classes``, ``in_chans``, ``drop_rate``,
            ``global_pool``, ``features_only``, ``out_indices``, ``pretrained_cfg_overlay``
            and the architecture's own (see its class).

    Returns:
        The model, in train mode like every timm model; call ``.eval()`` before inference.

    Raises:
        ValueError: ``name`` is neither a cervattn nor a timm model (the message lists close names),
            or its tag is unknown (the message lists the tags).
        cervattn.hub.WeightsNotFoundError: Offline and no mirror or cache holds the weights (the
            message says where it looked and how to fix it).
        cervattn.hub.IntegrityError: The weight file's sha256 differs from the release table's;
            nothing was loaded.

    Examples:
        >>> import cervattn
        >>> model = cervattn.create_model("rcan_densenet121", num_classes=5)
        >>> len(model.pretrained_cfg["label_names"])  # the five SIPaKMeD classes
        5
        >>> model = cervattn.create_model("rcan_densenet121.sipakmed_cells_64", pretrained=True)  # doctest: +SKIP
    """
    if not isinstance(name, str):
        raise TypeError(f"Model name must be a string, got {type(name).__name__}: {name!r}.")
    if ":" not in name:
        arch, _ = split_model_name_tag(name)
        if not timm.is_model(arch):
            ours = list_models(include_test=True)
            close = difflib.get_close_matches(arch, ours + timm.list_models(), n=5, cutoff=0.6)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            raise ValueError(
                f"Unknown model {name!r}.{hint} See cervattn.list_models() for cervattn's "
                f"{len(ours)} architectures (`cervattn models` on the command line)."
            )
    model = hub.create_with_weights(name, pretrained, mirror, revision, cache_dir, force_download, verify, kwargs)
    if checkpoint_path is not None:
        model.load_state_dict(hub.load_checkpoint(checkpoint_path), strict=True)
    return model
