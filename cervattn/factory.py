"""``create_model``, ``list_models`` and ``list_pretrained``: cervattn's front door to timm's registry."""

from __future__ import annotations

import difflib
import fnmatch
from typing import Any

import timm
from timm.models import split_model_name_tag
from torch import nn

from .models import MODEL_MODULES

__all__ = ["create_model", "list_models", "list_pretrained", "is_cervattn_model"]

_MODULES = [name.rsplit(".", 1)[-1] for name in MODEL_MODULES]


def list_models(pattern: str = "", pretrained: bool = False, include_test: bool = False) -> list[str]:
    """Names of cervattn's architectures, sorted.

    Args:
        pattern: Shell-style wildcard, e.g. ``"rcan_*"``; empty for all.
        pretrained: List ``arch.tag`` names of every pretrained tag instead of architectures.
        include_test: Also list the tiny ``test_*`` architectures used by tests and examples.

    Example:
        >>> import cervattn
        >>> "rcan_densenet121" in cervattn.list_models("rcan_*")
        True
    """
    names = timm.list_models(pattern or "", module=_MODULES, pretrained=pretrained)
    if not include_test:
        names = [n for n in names if not n.startswith("test_")]
    return names


def list_pretrained(pattern: str = "") -> list[str]:
    """``arch.tag`` names of every pretrained tag of cervattn's models, e.g. ``"ran_resnet50.a1_in1k"``.

    Args:
        pattern: Shell-style wildcard on the full ``arch.tag`` name; empty for all.
    """
    names = list_models(pretrained=True, include_test=True)
    return [n for n in names if not pattern or fnmatch.fnmatch(n, pattern)]


def is_cervattn_model(name: str) -> bool:
    """Whether ``name`` (with or without a tag) is one of cervattn's architectures."""
    arch, _ = split_model_name_tag(name)
    return arch in list_models(include_test=True)


def create_model(name: str, pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """Create a cervattn model (or any timm model) by name.

    Args:
        name: Architecture, optionally with a pretrained tag: ``"rcan_densenet121"``,
            ``"ran_resnet50.a1_in1k"``. Also accepts any timm name, ``hf-hub:`` and ``local-dir:``.
        pretrained: Load the weights of the tag (the architecture's default tag when none is given).
        **kwargs: timm model arguments: ``num_classes``, ``in_chans``, ``drop_rate``,
            ``global_pool``, ``features_only``, ``out_indices``, ``pretrained_cfg_overlay``,
            ``cache_dir`` and the architecture's own (see its class).

    Returns:
        The model, in train mode like every timm model; call ``.eval()`` before inference.

    Raises:
        ValueError: ``name`` is neither a cervattn nor a timm model; the message lists close names.

    Example:
        >>> import cervattn
        >>> model = cervattn.create_model("rcan_densenet121", num_classes=5)
        >>> model.pretrained_cfg["label_names"][0]
        'Dyskeratotic'
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
    return timm.create_model(name, pretrained=pretrained, **kwargs)
