"""Residual attention (RAN) and residual channel attention (RCAN) on timm's ResNet.

Three ways to add attention to a ResNet, each keeping timm's ``resnet*`` parameter names for the
trunk so that timm's ImageNet weights load unchanged:

* ``ran_resnet*``: a RAN soft-mask branch at the end of stages 1-3 (``layerN.attn``),
  ``H = (1 + M(T)) * T`` with 3, 2, 1 max-poolings (Wang et al. 2017).
* ``rcan_resnet*``: one RCAN channel-attention layer (reduction 16) on the residual branch of the
  last block of stage 4, before the identity is added: the ResNet analogue of the seed paper's
  published RCAN-DenseNet-121 configuration.
* ``rcab_resnet*``: a channel-attention layer in the residual branch of *every* block (RCAN's
  residual channel attention block, RCAB). This is architecturally timm's ``seresnet*`` (same
  ``se.fc1``/``se.fc2`` 1x1 convolutions with reduction 16) plus one ``gamma`` per layer.

Papers: ResNet, He et al. 2016, arXiv:1512.03385; RAN, Wang et al. 2017, arXiv:1704.06904;
RCAN, Zhang et al. 2018, arXiv:1807.02758; seed paper, Wang et al. 2021, arXiv:2106.00557.
"""

from __future__ import annotations

from typing import Any

from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models._manipulate import MATCH_PREV_GROUP
from timm.models.resnet import BasicBlock, Bottleneck, ResNet

from ..layers import ChannelAttention, ResidualAttention
from ..releases import release_cfgs
from ._builder import backbone_start_filter, imagenet_start_cfg, sipakmed_cfg

__all__ = ["AttentionResNet"]

ATTENTIONS = ("ran", "rcan", "rcab")


class AttentionResNet(ResNet):
    """timm ``ResNet`` with RAN or RCAN attention placed inside its stages.

    Takes every argument of ``timm.models.resnet.ResNet`` plus:

    Args:
        attention: ``"ran"`` (soft-mask branches on stages 1-3), ``"rcan"`` (one channel
            attention layer in the last block) or ``"rcab"`` (channel attention in every block).
        mask_pools: Soft-mask depth (max-poolings) for stages 1, 2, 3 when ``attention="ran"``.
        reduction: Channel-attention reduction when ``attention`` is ``"rcan"`` or ``"rcab"``.
        **kwargs: Passed to ``timm.models.resnet.ResNet``.
    """

    def __init__(
        self,
        attention: str = "ran",
        mask_pools: tuple[int, int, int] = (3, 2, 1),
        reduction: int = 16,
        **kwargs: Any,
    ):
        if attention not in ATTENTIONS:
            raise ValueError(f"Unknown attention {attention!r}; accepted: {', '.join(ATTENTIONS)}.")
        super().__init__(**kwargs)
        self.attention = attention
        stage_chs = {info["module"]: info["num_chs"] for info in self.feature_info}
        if attention == "ran":
            for stage, pools in zip(("layer1", "layer2", "layer3"), mask_pools):
                getattr(self, stage).add_module("attn", ResidualAttention(stage_chs[stage], num_pools=pools))
        else:
            stages = ("layer4",) if attention == "rcan" else ("layer1", "layer2", "layer3", "layer4")
            for stage in stages:
                blocks = list(getattr(self, stage))
                for block in blocks[-1:] if attention == "rcan" else blocks:
                    block.se = ChannelAttention(stage_chs[stage], reduction=reduction)

    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        matcher = super().group_matcher(coarse)
        if not coarse:
            matcher["blocks"] = [(r"^layer(\d+)\.(\d+)", None), (r"^layer(\d+)\.attn", MATCH_PREV_GROUP)]
        return matcher


def _create(variant: str, pretrained: bool = False, **kwargs: Any) -> AttentionResNet:
    return build_model_with_cfg(
        AttentionResNet, variant, pretrained, pretrained_filter_fn=backbone_start_filter, **kwargs
    )


def _cfg(**kwargs: Any) -> dict[str, Any]:
    return sipakmed_cfg("conv1", "fc", **kwargs)


def _in1k(backbone: str, **kwargs: Any) -> dict[str, Any]:
    return imagenet_start_cfg(backbone, "conv1", "fc", **kwargs)


_BACKBONES = {  # depth: (block, layers, timm ImageNet tag)
    18: (BasicBlock, (2, 2, 2, 2), "resnet18.a1_in1k"),
    34: (BasicBlock, (3, 4, 6, 3), "resnet34.a1_in1k"),
    50: (Bottleneck, (3, 4, 6, 3), "resnet50.a1_in1k"),
    101: (Bottleneck, (3, 4, 23, 3), "resnet101.a1h_in1k"),
}

default_cfgs = generate_default_cfgs(
    {
        **release_cfgs(_cfg(), (f"{a}_resnet{d}" for a in ATTENTIONS for d in _BACKBONES)),  # best first
        **{
            f"{attn}_resnet{depth}.{tag.split('.')[1]}": _in1k(tag, interpolation="bicubic")
            for attn in ATTENTIONS
            for depth, (_, _, tag) in _BACKBONES.items()
        },
        "test_ran_resnet": _cfg(input_size=(3, 64, 64), pool_size=(2, 2)),
        "test_rcab_resnet": _cfg(input_size=(3, 64, 64), pool_size=(2, 2)),
    }
)


def _resnet(attention: str, depth: int, pretrained: bool, **kwargs: Any) -> AttentionResNet:
    block, layers, _ = _BACKBONES[depth]
    args = dict(block=block, layers=layers, attention=attention)
    return _create(f"{attention}_resnet{depth}", pretrained, **dict(args, **kwargs))


@register_model
def ran_resnet18(pretrained: bool = False, **kwargs: Any) -> AttentionResNet:
    """RAN-ResNet-18: soft-mask attention on stages 1-3 of ResNet-18 (arXiv:1704.06904)."""
    return _resnet("ran", 18, pretrained, **kwargs)


@register_model
def ran_resnet34(pretrained: bool = False, **kwargs: Any) -> AttentionResNet:
    """RAN-ResNet-34: soft-mask attention on stages 1-3 of ResNet-34 (arXiv:1704.06904)."""
    return _resnet("ran", 34, pretrained, **kwargs)


@register_model
def ran_resnet50(pretrained: bool = False, **kwargs: Any) -> AttentionResNet:
    """RAN-ResNet-50: soft-mask attention on stages 1-3 of ResNet-50 (arXiv:1704.06904, 2106.00557)."""
    return _resnet("ran", 50, pretrained, **kwargs)


@register_model
def ran_resnet101(pretrained: bool = False, **kwargs: Any) -> AttentionResNet:
    """RAN-ResNet-101: soft-mask attention on stages 1-3 of ResNet-101 (arXiv:1704.06904)."""
    return _resnet("ran", 101, pretrained, **kwargs)


@register_model
def rcan_resnet18(pretrained: bool = False, **kwargs: Any) -> AttentionResNet:
    """RCAN-ResNet-18: one channel-attention layer in the last block (arXiv:1807.02758)."""
    return _resnet("rcan", 18, pretrained, **kwargs)


@register_model
def rcan_resnet34(pretrained: bool = False, **kwargs: Any) -> AttentionResNet:
    """RCAN-ResNet-34: one channel-attention layer in the last block (arXiv:1807.02758)."""
    return _resnet("rcan", 34, pretrained, **kwargs)


@register_model
def rcan_resnet50(pretrained: bool = False, **kwargs: Any) -> AttentionResNet:
    """RCAN-ResNet-50: one channel-attention layer in the last block (arXiv:1807.02758)."""
    return _resnet("rcan", 50, pretrained, **kwargs)


@register_model
def rcan_resnet101(pretrained: bool = False, **kwargs: Any) -> AttentionResNet:
    """RCAN-ResNet-101: one channel-attention layer in the last block (arXiv:1807.02758)."""
    return _resnet("rcan", 101, pretrained, **kwargs)


@register_model
def rcab_resnet18(pretrained: bool = False, **kwargs: Any) -> AttentionResNet:
    """RCAB-ResNet-18: channel attention in every block; timm's seresnet18 plus gamma (arXiv:1807.02758)."""
    return _resnet("rcab", 18, pretrained, **kwargs)


@register_model
def rcab_resnet34(pretrained: bool = False, **kwargs: Any) -> AttentionResNet:
    """RCAB-ResNet-34: channel attention in every block; timm's seresnet34 plus gamma (arXiv:1807.02758)."""
    return _resnet("rcab", 34, pretrained, **kwargs)


@register_model
def rcab_resnet50(pretrained: bool = False, **kwargs: Any) -> AttentionResNet:
    """RCAB-ResNet-50: channel attention in every block; timm's seresnet50 plus gamma (arXiv:1807.02758)."""
    return _resnet("rcab", 50, pretrained, **kwargs)


@register_model
def rcab_resnet101(pretrained: bool = False, **kwargs: Any) -> AttentionResNet:
    """RCAB-ResNet-101: channel attention in every block; timm's seresnet101 plus gamma (arXiv:1807.02758)."""
    return _resnet("rcab", 101, pretrained, **kwargs)


_TINY = dict(block=BasicBlock, layers=(1, 1, 1, 1), channels=(16, 32, 64, 128), stem_width=16)


@register_model
def test_ran_resnet(pretrained: bool = False, **kwargs: Any) -> AttentionResNet:
    """Tiny RAN-ResNet for tests and examples (not a real architecture)."""
    return _create("test_ran_resnet", pretrained, **dict(_TINY, attention="ran", **kwargs))


@register_model
def test_rcab_resnet(pretrained: bool = False, **kwargs: Any) -> AttentionResNet:
    """Tiny RCAB-ResNet for tests and examples (not a real architecture)."""
    return _create("test_rcab_resnet", pretrained, **dict(_TINY, attention="rcab", **kwargs))
