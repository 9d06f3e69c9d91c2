"""Residual channel attention (RCAN) and residual attention (RAN) on timm's DenseNet.

The trunk keeps timm's (and torchvision's) ``densenet*`` parameter names, so their ImageNet
weights load unchanged:

* ``rcan_densenet*`` is the seed paper's **published configuration** (Wang et al. 2021, the
  "RCAN-DenseNet-121" of Table II): ONE RCAN channel-attention layer (reduction 16) on the new
  feature maps (``growth_rate`` = 32 of them) of the last dense layer of block 4, before the
  final concatenation. Its cost over the backbone is negligible.
* ``rcab_densenet*`` is the fuller residual-channel-attention design that the paper's text
  describes (RCAN's residual channel attention block): a channel-attention layer on the new
  feature maps of *every* dense layer, the dense concatenation acting as the identity skip.
* ``ran_densenet*``: a RAN soft-mask branch at the end of dense blocks 1-3 (``features.attnN``),
  ``H = (1 + M(T)) * T`` with 3, 2, 1 max-poolings.

Papers: DenseNet, Huang et al. 2017, arXiv:1608.06993; RCAN, Zhang et al. 2018,
arXiv:1807.02758; RAN, Wang et al. 2017, arXiv:1704.06904; seed paper, arXiv:2106.00557.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models._manipulate import MATCH_PREV_GROUP
from timm.models.densenet import DenseLayer, DenseNet, _filter_torchvision_pretrained
from torch import nn

from ..layers import ChannelAttention, ResidualAttention
from ..releases import release_cfgs
from ._builder import backbone_start_filter, imagenet_start_cfg, sipakmed_cfg

__all__ = ["AttentionDenseNet", "AttentiveDenseLayer"]

ATTENTIONS = ("ran", "rcan", "rcab")


class AttentiveDenseLayer(DenseLayer):
    """A timm ``DenseLayer`` whose new feature maps pass through ``attn`` before concatenation.

    It takes over the children of an existing layer, so parameter names stay those of the
    backbone (``norm1``, ``conv1``, ``norm2``, ``conv2``) and only ``attn.*`` is new.

    Args:
        layer: The dense layer to equip.
        attn: An attention layer for ``growth_rate`` channels.
    """

    def __init__(self, layer: DenseLayer, attn: nn.Module):
        nn.Module.__init__(self)
        for name, child in layer.named_children():
            self.add_module(name, child)
        self.drop_rate = layer.drop_rate
        self.grad_checkpointing = layer.grad_checkpointing
        self.attn = attn

    def forward(self, x: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
        return self.attn(super().forward(x))


class AttentionDenseNet(DenseNet):
    """timm ``DenseNet`` with RCAN or RAN attention placed inside its feature stages.

    Takes every argument of ``timm.models.densenet.DenseNet`` plus:

    Args:
        attention: ``"rcan"`` (one channel-attention layer on the last dense layer, the seed
            paper's published configuration), ``"rcab"`` (channel attention in every dense
            layer) or ``"ran"`` (soft-mask branches after dense blocks 1-3).
        reduction: Channel-attention reduction.
        mask_pools: Soft-mask depth for dense blocks 1, 2, 3 when ``attention="ran"``.
        **kwargs: Passed to ``timm.models.densenet.DenseNet``.
    """

    def __init__(
        self,
        attention: str = "rcan",
        reduction: int = 16,
        mask_pools: tuple[int, int, int] = (3, 2, 1),
        **kwargs: Any,
    ):
        if attention not in ATTENTIONS:
            raise ValueError(f"Unknown attention {attention!r}; accepted: {', '.join(ATTENTIONS)}.")
        super().__init__(**kwargs)
        self.attention = attention
        blocks = [m for name, m in self.features.named_children() if name.startswith("denseblock")]
        if attention == "ran":
            self._add_mask_branches(len(blocks), mask_pools)
            return
        layers = [list(blocks[-1].items())[-1]] if attention == "rcan" else [
            item for block in blocks for item in block.items()
        ]
        owners = {id(layer): block for block in blocks for layer in block.values()}
        for name, layer in layers:
            attn = ChannelAttention(layer.conv2.out_channels, reduction=reduction)
            owners[id(layer)][name] = AttentiveDenseLayer(layer, attn)

    def _add_mask_branches(self, num_blocks: int, mask_pools: tuple[int, ...]) -> None:
        stage_chs = {info["module"]: info["num_chs"] for info in self.feature_info}
        children: list[tuple[str, nn.Module]] = []
        for name, module in self.features.named_children():
            children.append((name, module))
            index = int(name[len("denseblock"):]) if name.startswith("denseblock") else 0
            if 0 < index < num_blocks and index <= len(mask_pools):
                channels = stage_chs[f"features.{name}"]
                children.append((f"attn{index}", ResidualAttention(channels, num_pools=mask_pools[index - 1])))
                for info in self.feature_info:
                    if info["module"] == f"features.{name}":
                        info["module"] = f"features.attn{index}"
        self.features = nn.Sequential(OrderedDict(children))
        names = [n for n, _ in self.features.named_children()]
        self.feature_ends = [names.index(f["module"].split(".", 1)[1]) for f in self.feature_info]

    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        matcher = super().group_matcher(coarse)
        if coarse:
            matcher["blocks"] = r"^features\.(?:denseblock|transition|attn)(\d+)"
        else:
            matcher["blocks"] = matcher["blocks"] + [(r"^features\.attn(\d+)", MATCH_PREV_GROUP)]
        return matcher


def _create(variant: str, pretrained: bool = False, **kwargs: Any) -> AttentionDenseNet:
    def filter_fn(state_dict: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
        return backbone_start_filter(_filter_torchvision_pretrained(state_dict), model)

    return build_model_with_cfg(
        AttentionDenseNet,
        variant,
        pretrained,
        feature_cfg=dict(flatten_sequential=True),
        pretrained_filter_fn=filter_fn,
        **kwargs,
    )


def _cfg(**kwargs: Any) -> dict[str, Any]:
    return sipakmed_cfg("features.conv0", "classifier", interpolation="bicubic", **kwargs)


_BACKBONES = {  # depth: (growth_rate, block_config, timm ImageNet tag)
    121: (32, (6, 12, 24, 16), "densenet121.tv_in1k"),
    161: (48, (6, 12, 36, 24), "densenet161.tv_in1k"),
    169: (32, (6, 12, 32, 32), "densenet169.tv_in1k"),
    201: (32, (6, 12, 48, 32), "densenet201.tv_in1k"),
}

default_cfgs = generate_default_cfgs(
    {
        **release_cfgs(_cfg(), (f"{a}_densenet{d}" for a in ATTENTIONS for d in _BACKBONES)),  # best first
        **{
            f"{attn}_densenet{depth}.{tag.split('.')[1]}": imagenet_start_cfg(
                tag, "features.conv0", "classifier", interpolation="bicubic"
            )
            for attn in ATTENTIONS
            for depth, (_, _, tag) in _BACKBONES.items()
        },
        "test_rcan_densenet": _cfg(input_size=(3, 64, 64), pool_size=(2, 2)),
        "test_ran_densenet": _cfg(input_size=(3, 64, 64), pool_size=(2, 2)),
    }
)


def _densenet(attention: str, depth: int, pretrained: bool, **kwargs: Any) -> AttentionDenseNet:
    growth_rate, block_config, _ = _BACKBONES[depth]
    args = dict(growth_rate=growth_rate, block_config=block_config, attention=attention)
    return _create(f"{attention}_densenet{depth}", pretrained, **dict(args, **kwargs))


@register_model
def rcan_densenet121(pretrained: bool = False, **kwargs: Any) -> AttentionDenseNet:
    """RCAN-DenseNet-121 as published by the seed paper: one CA layer on the last dense layer (arXiv:2106.00557)."""
    return _densenet("rcan", 121, pretrained, **kwargs)


@register_model
def rcan_densenet161(pretrained: bool = False, **kwargs: Any) -> AttentionDenseNet:
    """RCAN-DenseNet-161: one CA layer on the last dense layer, as the seed paper (arXiv:2106.00557)."""
    return _densenet("rcan", 161, pretrained, **kwargs)


@register_model
def rcan_densenet169(pretrained: bool = False, **kwargs: Any) -> AttentionDenseNet:
    """RCAN-DenseNet-169: one CA layer on the last dense layer, as the seed paper (arXiv:2106.00557)."""
    return _densenet("rcan", 169, pretrained, **kwargs)


@register_model
def rcan_densenet201(pretrained: bool = False, **kwargs: Any) -> AttentionDenseNet:
    """RCAN-DenseNet-201: one CA layer on the last dense layer, as the seed paper (arXiv:2106.00557)."""
    return _densenet("rcan", 201, pretrained, **kwargs)


@register_model
def rcab_densenet121(pretrained: bool = False, **kwargs: Any) -> AttentionDenseNet:
    """RCAB-DenseNet-121: channel attention on every dense layer's new maps (arXiv:1807.02758)."""
    return _densenet("rcab", 121, pretrained, **kwargs)


@register_model
def rcab_densenet161(pretrained: bool = False, **kwargs: Any) -> AttentionDenseNet:
    """RCAB-DenseNet-161: channel attention on every dense layer's new maps (arXiv:1807.02758)."""
    return _densenet("rcab", 161, pretrained, **kwargs)


@register_model
def rcab_densenet169(pretrained: bool = False, **kwargs: Any) -> AttentionDenseNet:
    """RCAB-DenseNet-169: channel attention on every dense layer's new maps (arXiv:1807.02758)."""
    return _densenet("rcab", 169, pretrained, **kwargs)


@register_model
def rcab_densenet201(pretrained: bool = False, **kwargs: Any) -> AttentionDenseNet:
    """RCAB-DenseNet-201: channel attention on every dense layer's new maps (arXiv:1807.02758)."""
    return _densenet("rcab", 201, pretrained, **kwargs)


@register_model
def ran_densenet121(pretrained: bool = False, **kwargs: Any) -> AttentionDenseNet:
    """RAN-DenseNet-121: soft-mask attention after dense blocks 1-3 (arXiv:1704.06904)."""
    return _densenet("ran", 121, pretrained, **kwargs)


@register_model
def ran_densenet161(pretrained: bool = False, **kwargs: Any) -> AttentionDenseNet:
    """RAN-DenseNet-161: soft-mask attention after dense blocks 1-3 (arXiv:1704.06904)."""
    return _densenet("ran", 161, pretrained, **kwargs)


@register_model
def ran_densenet169(pretrained: bool = False, **kwargs: Any) -> AttentionDenseNet:
    """RAN-DenseNet-169: soft-mask attention after dense blocks 1-3 (arXiv:1704.06904)."""
    return _densenet("ran", 169, pretrained, **kwargs)


@register_model
def ran_densenet201(pretrained: bool = False, **kwargs: Any) -> AttentionDenseNet:
    """RAN-DenseNet-201: soft-mask attention after dense blocks 1-3 (arXiv:1704.06904)."""
    return _densenet("ran", 201, pretrained, **kwargs)


_TINY = dict(growth_rate=8, block_config=(2, 2, 2, 2))


@register_model
def test_rcan_densenet(pretrained: bool = False, **kwargs: Any) -> AttentionDenseNet:
    """Tiny RCAN-DenseNet for tests and examples (not a real architecture)."""
    return _create("test_rcan_densenet", pretrained, **dict(_TINY, attention="rcan", **kwargs))


@register_model
def test_ran_densenet(pretrained: bool = False, **kwargs: Any) -> AttentionDenseNet:
    """Tiny RAN-DenseNet for tests and examples (not a real architecture)."""
    return _create("test_ran_densenet", pretrained, **dict(_TINY, attention="ran", **kwargs))
