"""Pieces shared by the model files: pretrained cfg defaults and the ImageNet-start loader.

An *ImageNet start* loads timm's ImageNet-1k weights of a backbone (``resnet50``,
``densenet121``, ...) into the trunk of an attention variant. The checkpoint has no attention
keys, so :func:`backbone_start_filter` fills them in from the freshly built model with every
attention ``gamma`` set to 0 (the attention is then the identity and the model's output equals the
backbone's) and gives the model a fresh classifier when the checkpoint's head has another shape.
It is strict about everything else: a checkpoint key the model lacks, or a trunk key it misses,
raises ``KeyError``.
"""

from __future__ import annotations

from typing import Any

import torch
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from torch import nn

from ..constants import RESEARCH_USE_NOTICE, SIPAKMED_CLASSES
from ..layers import ATTENTION_LAYERS

__all__ = ["sipakmed_cfg", "imagenet_start_cfg", "backbone_start_filter", "attention_prefixes"]

PAPER_NAME = "Towards Interpretable Attention Networks for Cervical Cancer Analysis"
PAPER_ID = "arXiv:2106.00557"


def sipakmed_cfg(first_conv: str, classifier: str, **kwargs: Any) -> dict[str, Any]:
    """Pretrained-cfg defaults of a cervattn model: five SIPaKMeD classes, ImageNet mean/std.

    Args:
        first_conv: Name of the input convolution (adapted by timm for ``in_chans != 3``).
        classifier: Name of the classifier module (reset by timm for ``num_classes != 5``).
        **kwargs: Any further ``timm.models.PretrainedCfg`` field, overriding the defaults.
    """
    return {
        "num_classes": len(SIPAKMED_CLASSES),
        "label_names": SIPAKMED_CLASSES,
        "input_size": (3, 224, 224),
        "min_input_size": (3, 32, 32),
        "pool_size": (7, 7),
        "crop_pct": 1.0,
        "interpolation": "bilinear",
        "mean": IMAGENET_DEFAULT_MEAN,
        "std": IMAGENET_DEFAULT_STD,
        "first_conv": first_conv,
        "classifier": classifier,
        "license": "apache-2.0",
        "paper_name": PAPER_NAME,
        "paper_ids": PAPER_ID,
        "notes": (RESEARCH_USE_NOTICE,),
        **kwargs,
    }


def imagenet_start_cfg(backbone: str, first_conv: str, classifier: str, **kwargs: Any) -> dict[str, Any]:
    """Cfg of an ImageNet-start tag: timm's ``backbone`` weights in the trunk, attention at identity.

    The classifier is new (five SIPaKMeD classes, untrained): the tag is a starting point for
    fine-tuning, not a classifier.

    Args:
        backbone: timm pretrained name, e.g. ``"resnet50.a1_in1k"``; its Hub repo is ``timm/<backbone>``.
        first_conv: Name of the input convolution.
        classifier: Name of the classifier module.
        **kwargs: Further cfg fields (e.g. the backbone's ``interpolation``).
    """
    return sipakmed_cfg(
        first_conv,
        classifier,
        hf_hub_id=f"timm/{backbone}",
        crop_pct=0.875,
        description=(
            f"ImageNet-1k start: timm's {backbone} weights in the trunk, attention initialised to "
            "the identity (gamma = 0), new untrained 5-class head. For fine-tuning."
        ),
        **kwargs,
    )


def attention_prefixes(model: nn.Module) -> list[str]:
    """Names (with trailing dot) of every attention module of ``model``, outermost only."""
    prefixes: list[str] = []
    for name, module in model.named_modules():
        if isinstance(module, ATTENTION_LAYERS) and not any(name.startswith(p) for p in prefixes):
            prefixes.append(name + ".")
    return prefixes


def backbone_start_filter(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """timm ``pretrained_filter_fn``: complete a backbone checkpoint with identity attention.

    A checkpoint that already holds attention keys (a full cervattn checkpoint) is returned
    unchanged. Otherwise every attention key is taken from ``model`` with ``gamma`` zeroed, and a
    classifier whose shape differs from the model's is replaced by the model's own.

    Raises:
        KeyError: The checkpoint is not a backbone of this model (keys missing or unexpected).
    """
    own = model.state_dict()
    prefixes = tuple(attention_prefixes(model))
    if any(k.startswith(prefixes) for k in state_dict) or not prefixes:
        return state_dict
    classifier = model.pretrained_cfg.get("classifier") if hasattr(model, "pretrained_cfg") else None
    head_keys = {f"{classifier}.weight", f"{classifier}.bias"} if classifier else set()
    trunk = {k for k in own if not k.startswith(prefixes)}
    unexpected = sorted(set(state_dict) - trunk)
    missing = sorted(trunk - set(state_dict) - head_keys)
    if unexpected or missing:
        raise KeyError(
            f"The checkpoint is not a backbone of {type(model).__name__}: "
            f"{len(unexpected)} unexpected keys (e.g. {unexpected[:3]}) and {len(missing)} missing trunk keys "
            f"(e.g. {missing[:3]}). An ImageNet start needs the timm backbone named in the tag's cfg; "
            "load a full cervattn checkpoint with pretrained=True on a SIPaKMeD tag instead."
        )
    out = dict(state_dict)
    for key in head_keys:
        if key not in out or out[key].shape != own[key].shape:
            out[key] = own[key]
    gammas = {prefix + "gamma" for prefix in prefixes}
    for key, value in own.items():
        if key.startswith(prefixes):
            out[key] = torch.zeros_like(value) if key in gammas else value
    return out
