"""Model cost without running it: parameters and multiply-accumulates (MACs).

The model is built on PyTorch's ``meta`` device and run once under
``torch.utils.flop_counter.FlopCounterMode``, so nothing is allocated or computed: counting the
largest model takes about a second on a CPU.
"""

from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from .factory import create_model

__all__ = ["model_cost"]


def model_cost(name: str, img_size: int = 224, **kwargs) -> tuple[int, float]:
    """Parameter count and GMACs of one forward pass on a ``1 x 3 x img_size x img_size`` input.

    Args:
        name: A model name accepted by :func:`cervattn.create_model`.
        img_size: Input height and width in pixels.
        **kwargs: Model arguments (e.g. ``num_classes``).

    Returns:
        ``(parameters, gmacs)``.
    """
    with torch.device("meta"):
        model = create_model(name, **kwargs).eval()
        params = sum(p.numel() for p in model.parameters())
        with FlopCounterMode(display=False) as counter:
            model(torch.empty(1, kwargs.get("in_chans", 3), img_size, img_size))
    return params, counter.get_total_flops() / 2e9
