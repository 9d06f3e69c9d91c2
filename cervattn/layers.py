"""Attention layers of cervattn: residual channel attention and residual (soft-mask) attention.

Every layer follows timm's attention-layer contract (``timm/layers/create_attn.py``): the first
argument is the channel count and the output has the input's shape, so a layer plugs into any
block. Each layer has a learnable scalar ``gamma`` that blends the attention with the identity:

* ``gamma = 1`` (the default) is exactly the published formula;
* ``gamma = 0`` makes the layer the identity, which is how the ImageNet-start weights begin
  equal to their timm backbone (the ReZero / LayerScale trick: ``gamma`` gets a gradient at once,
  the rest of the attention as soon as ``gamma`` moves).

The attention weights themselves come out of a child ``nn.Sigmoid`` named ``sigmoid``, so that
explanation code can read them with a forward hook without re-running anything.

Papers:
    * RCAN: Y. Zhang et al., "Image Super-Resolution Using Very Deep Residual Channel Attention
      Networks", ECCV 2018, arXiv:1807.02758 (the channel attention layer, "CALayer").
    * RAN: F. Wang et al., "Residual Attention Network for Image Classification", CVPR 2017,
      arXiv:1704.06904 (soft-mask branch, attention residual learning ``(1 + M) * T``).
    * Pre-activation residual units: K. He et al., "Identity Mappings in Deep Residual Networks",
      ECCV 2016, arXiv:1603.05027.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ChannelAttention",
    "PreActBottleneck",
    "SoftMaskBranch",
    "ResidualAttention",
    "AttentionModule",
    "ATTENTION_LAYERS",
]


class ChannelAttention(nn.Module):
    """RCAN channel attention: ``y = x * s(x)`` with ``s = sigmoid(W2 relu(W1 avgpool(x)))``.

    Identical in structure to RCAN's ``CALayer`` (1x1 convolutions with bias, reduction 16) and
    to the squeeze-and-excitation module of timm's ``seresnet`` models.

    Args:
        channels: Number of input (and output) channels.
        reduction: Channel reduction of the bottleneck; the hidden width is
            ``max(channels // reduction, min_hidden)``.
        min_hidden: Smallest hidden width, so that narrow inputs (e.g. 32 maps) keep a bottleneck.
        gamma: Initial blend with the identity, ``y = x * (1 + gamma * (s - 1))``: 1 is RCAN's
            formula, 0 the identity.
    """

    def __init__(self, channels: int, reduction: int = 16, min_hidden: int = 2, gamma: float = 1.0):
        super().__init__()
        hidden = max(channels // reduction, min_hidden)
        self.fc1 = nn.Conv2d(channels, hidden, kernel_size=1, bias=True)
        self.act = nn.ReLU()
        self.fc2 = nn.Conv2d(hidden, channels, kernel_size=1, bias=True)
        self.sigmoid = nn.Sigmoid()
        self.gamma = nn.Parameter(torch.tensor(float(gamma)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.sigmoid(self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True)))))
        return x * (1.0 + self.gamma * (s - 1.0))


class PreActBottleneck(nn.Module):
    """Pre-activation bottleneck residual unit (BN-ReLU-conv 1x1/3x3/1x1), as used by RAN.

    Args:
        in_chs: Input channels.
        out_chs: Output channels; the bottleneck width is ``out_chs // 4``.
        stride: Stride of the 3x3 convolution.
    """

    def __init__(self, in_chs: int, out_chs: int, stride: int = 1):
        super().__init__()
        mid = max(out_chs // 4, 1)
        self.bn1 = nn.BatchNorm2d(in_chs)
        self.conv1 = nn.Conv2d(in_chs, mid, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride=stride, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, out_chs, 1, bias=False)
        self.act = nn.ReLU()
        self.shortcut = (
            nn.Conv2d(in_chs, out_chs, 1, stride=stride, bias=False)
            if in_chs != out_chs or stride != 1
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.act(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(pre)
        x = self.conv1(pre)
        x = self.conv2(self.act(self.bn2(x)))
        x = self.conv3(self.act(self.bn3(x)))
        return x + shortcut


class SoftMaskBranch(nn.Module):
    """RAN soft-mask branch: bottom-up max-pooling, top-down bilinear upsampling, sigmoid head.

    ``num_pools`` max-poolings with ``r = 1`` residual unit after each; a skip unit at every level
    but the deepest; two units at the bottom; on the way up, upsample to the skip tensor's size
    (any input size works, nothing is hard-coded), add the skip, one unit; finally upsample to the
    input size and apply the head BN-ReLU-1x1-BN-ReLU-1x1-sigmoid. The output ``M`` has the input's
    shape and lies in (0, 1).

    Args:
        channels: Input (and output) channels.
        num_pools: Number of max-pool / upsample levels (RAN: 3, 2, 1 at 56, 28, 14 px).
    """

    def __init__(self, channels: int, num_pools: int):
        super().__init__()
        if num_pools < 1:
            raise ValueError(f"num_pools must be >= 1, got {num_pools}; RAN uses 3, 2, 1 for stages 1-3.")
        self.num_pools = num_pools
        self.pool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.down = nn.ModuleList(PreActBottleneck(channels, channels) for _ in range(num_pools))
        self.skips = nn.ModuleList(PreActBottleneck(channels, channels) for _ in range(num_pools - 1))
        self.bottom = PreActBottleneck(channels, channels)
        self.up = nn.ModuleList(PreActBottleneck(channels, channels) for _ in range(num_pools - 1))
        self.head = nn.Sequential(
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 1, bias=True),
        )
        self.sigmoid = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        skips = []
        for level, unit in enumerate(self.down):
            x = unit(self.pool(x))
            if level < self.num_pools - 1:
                skips.append(self.skips[level](x))
        x = self.bottom(x)
        for unit, skip in zip(self.up, reversed(skips)):
            x = unit(F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False) + skip)
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return self.sigmoid(self.head(x))


class ResidualAttention(nn.Module):
    """Attention residual learning on a trunk output: ``H = (1 + gamma * M(T)) * T``.

    Placed at the end of a backbone stage (ResNet ``layerN``, DenseNet ``denseblockN``), the stage
    is the trunk branch ``T`` and the soft mask ``M`` is computed from it, so the module keeps
    the backbone's parameter names and ImageNet weights load unchanged.

    Args:
        channels: Channels of the trunk output.
        num_pools: Depth of the soft-mask branch (see :class:`SoftMaskBranch`).
        gamma: Initial blend: 1 is RAN's ``(1 + M) * T``, 0 the identity.
    """

    def __init__(self, channels: int, num_pools: int = 1, gamma: float = 1.0):
        super().__init__()
        self.mask = SoftMaskBranch(channels, num_pools)
        self.gamma = nn.Parameter(torch.tensor(float(gamma)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * (1.0 + self.gamma * self.mask(x))


class AttentionModule(nn.Module):
    """One attention module of Attention-56/92 (Wang et al. 2017), p=1, t=2, r=1.

    ``pre`` unit, then trunk branch ``T`` (two units) and soft-mask branch ``M`` on the same input,
    ``H = (1 + gamma * M) * T``, then the ``post`` unit.

    Args:
        channels: Input and output channels.
        num_pools: Depth of the soft-mask branch.
        gamma: Initial blend of the attention with the identity (1 = the paper).
    """

    def __init__(self, channels: int, num_pools: int, gamma: float = 1.0):
        super().__init__()
        self.pre = PreActBottleneck(channels, channels)
        self.trunk = nn.Sequential(PreActBottleneck(channels, channels), PreActBottleneck(channels, channels))
        self.mask = SoftMaskBranch(channels, num_pools)
        self.gamma = nn.Parameter(torch.tensor(float(gamma)))
        self.post = PreActBottleneck(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pre(x)
        x = self.trunk(x) * (1.0 + self.gamma * self.mask(x))
        return self.post(x)


#: The attention layer types whose ``gamma`` is zeroed for an ImageNet start and whose
#: ``sigmoid`` child gives the attention weights.
ATTENTION_LAYERS = (ChannelAttention, ResidualAttention, AttentionModule)
