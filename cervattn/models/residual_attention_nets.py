"""Residual Attention Network, Attention-56 and Attention-92 (Wang et al. 2017).

These are the networks the seed paper's published code actually trains as "RAN-ResNet-50"
(Attention-92, from scratch). Unlike the reference code, nothing here depends on a 224 px input:
the soft-mask branches upsample to the size of the tensor they are added to.

Stages (224 px input): stem 7x7/2 + max-pool, then stage 1 (256 ch, 56 px, masks with 3
poolings), stage 2 (512 ch, 28 px, 2 poolings), stage 3 (1024 ch, 14 px, 1 pooling), each a
residual unit followed by 1/1/1 (Attention-56) or 1/2/3 (Attention-92) attention modules, then
stage 4 (2048 ch, 7 px, three residual units), BN-ReLU, global pooling, classifier.

Paper: F. Wang et al., "Residual Attention Network for Image Classification", CVPR 2017,
arXiv:1704.06904; used by the seed paper, arXiv:2106.00557.
"""

from __future__ import annotations

from typing import Any

import torch
from timm.layers import BatchNormAct2d, create_classifier
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models._features import feature_take_indices
from timm.models._manipulate import checkpoint_seq
from torch import nn

from ..layers import AttentionModule, PreActBottleneck
from ..releases import release_cfgs
from ._builder import sipakmed_cfg

__all__ = ["ResidualAttentionNet"]


class ResidualAttentionNet(nn.Module):
    """Residual Attention Network with pre-activation bottleneck units.

    Args:
        modules_per_stage: Attention modules in stages 1-3: (1, 1, 1) is Attention-56,
            (1, 2, 3) Attention-92.
        widths: Output channels of stages 1-4.
        stem_width: Channels of the 7x7 stem convolution.
        mask_pools: Soft-mask depth of the attention modules of stages 1-3.
        num_classes: Number of classes (0 for no classifier).
        in_chans: Number of input channels.
        global_pool: Global pooling type (timm's ``create_classifier``).
        drop_rate: Dropout before the classifier.
    """

    def __init__(
        self,
        modules_per_stage: tuple[int, int, int] = (1, 1, 1),
        widths: tuple[int, int, int, int] = (256, 512, 1024, 2048),
        stem_width: int = 64,
        mask_pools: tuple[int, int, int] = (3, 2, 1),
        num_classes: int = 5,
        in_chans: int = 3,
        global_pool: str = "avg",
        drop_rate: float = 0.0,
    ):
        super().__init__()
        self.num_classes = num_classes
        self.drop_rate = drop_rate
        self.grad_checkpointing = False
        self.conv1 = nn.Conv2d(in_chans, stem_width, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_width)
        self.act1 = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.feature_info = [dict(num_chs=stem_width, reduction=2, module="act1")]
        stages, in_chs = [], stem_width
        for index, out_chs in enumerate(widths):
            stride = 1 if index == 0 else 2
            units: list[nn.Module] = [PreActBottleneck(in_chs, out_chs, stride=stride)]
            if index < 3:
                units += [AttentionModule(out_chs, mask_pools[index]) for _ in range(modules_per_stage[index])]
            else:
                units += [PreActBottleneck(out_chs, out_chs) for _ in range(2)]
            stages.append(nn.Sequential(*units))
            self.feature_info.append(dict(num_chs=out_chs, reduction=4 * 2**index, module=f"stages.{index}"))
            in_chs = out_chs
        self.stages = nn.Sequential(*stages)
        self.norm = BatchNormAct2d(in_chs)
        self.feature_info[-1]["module"] = "norm"
        self.num_features = self.head_hidden_size = in_chs
        self.global_pool, self.fc = create_classifier(in_chs, num_classes, pool_type=global_pool)
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        return dict(
            stem=r"^conv1|bn1",
            blocks=r"^stages\.(\d+)" if coarse else [(r"^stages\.(\d+)\.(\d+)", None), (r"^norm", (99999,))],
        )

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        if global_pool is None:
            global_pool = self.global_pool.pool_type
        self.global_pool, self.fc = create_classifier(self.num_features, num_classes, pool_type=global_pool)

    def forward_intermediates(
        self,
        x: torch.Tensor,
        indices: int | list[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """Features with intermediates, timm's contract: index 0 is the stem, 1-4 the stages."""
        if output_fmt != "NCHW":
            raise ValueError(f"output_fmt {output_fmt!r} is not supported; only 'NCHW' is.")
        take_indices, max_index = feature_take_indices(5, indices)
        intermediates = []
        x = self.act1(self.bn1(self.conv1(x)))
        if 0 in take_indices:
            intermediates.append(x)
        x = self.maxpool(x)
        stages = self.stages if not stop_early else self.stages[:max_index]
        for index, stage in enumerate(stages, start=1):
            x = stage(x)
            if index == 4:
                x = self.norm(x)
            if index in take_indices:
                intermediates.append(x)
        if intermediates_only:
            return intermediates
        return x, intermediates

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.act1(self.bn1(self.conv1(x))))
        if self.grad_checkpointing and not torch.jit.is_scripting():
            x = checkpoint_seq(self.stages, x)
        else:
            x = self.stages(x)
        return self.norm(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.global_pool(x)
        if self.drop_rate:
            x = nn.functional.dropout(x, p=float(self.drop_rate), training=self.training)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _create(variant: str, pretrained: bool = False, **kwargs: Any) -> ResidualAttentionNet:
    return build_model_with_cfg(
        ResidualAttentionNet, variant, pretrained, feature_cfg=dict(flatten_sequential=True), **kwargs
    )


def _cfg(**kwargs: Any) -> dict[str, Any]:
    return sipakmed_cfg("conv1", "fc", paper_ids=("arXiv:1704.06904", "arXiv:2106.00557"), **kwargs)


default_cfgs = generate_default_cfgs(
    {
        **release_cfgs(_cfg(), ("ran_attention56", "ran_attention92")),  # released weights first
        "ran_attention56": _cfg(),
        "ran_attention92": _cfg(),
        "test_ran_attention": _cfg(input_size=(3, 64, 64), pool_size=(2, 2)),
    }
)


@register_model
def ran_attention56(pretrained: bool = False, **kwargs: Any) -> ResidualAttentionNet:
    """Attention-56, Residual Attention Network with 1/1/1 attention modules (arXiv:1704.06904)."""
    return _create("ran_attention56", pretrained, **dict(dict(modules_per_stage=(1, 1, 1)), **kwargs))


@register_model
def ran_attention92(pretrained: bool = False, **kwargs: Any) -> ResidualAttentionNet:
    """Attention-92, the seed paper's published "RAN" (1/2/3 attention modules, arXiv:1704.06904)."""
    return _create("ran_attention92", pretrained, **dict(dict(modules_per_stage=(1, 2, 3)), **kwargs))


@register_model
def test_ran_attention(pretrained: bool = False, **kwargs: Any) -> ResidualAttentionNet:
    """Tiny Residual Attention Network for tests and examples (not a real architecture)."""
    args = dict(modules_per_stage=(1, 1, 1), widths=(32, 64, 128, 256), stem_width=16)
    return _create("test_ran_attention", pretrained, **dict(args, **kwargs))
