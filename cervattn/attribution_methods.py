"""Attribution methods behind :func:`cervattn.explain`: the computing, without input handling.

Every function here takes an already preprocessed, normalised batch ``x`` of shape
``(N, C, H, W)`` and integer targets ``(N,)`` and returns attributions at input resolution.
The model must already be prepared by :func:`prepared_model` (eval mode, parameters frozen,
hooks cleaned up afterwards); :func:`cervattn.explain` does that.

Methods and papers:
    * Integrated Gradients: M. Sundararajan, A. Taly, Q. Yan, "Axiomatic Attribution for Deep
      Networks", ICML 2017, arXiv:1703.01365 (computed with captum's ``IntegratedGradients``).
    * Saliency (plain gradient): K. Simonyan, A. Vedaldi, A. Zisserman, "Deep Inside
      Convolutional Networks", arXiv:1312.6034.
    * SmoothGrad: D. Smilkov et al., "SmoothGrad: removing noise by adding noise",
      arXiv:1706.03825 (captum's ``NoiseTunnel``).
    * Grad-CAM: R. R. Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
      Gradient-based Localization", ICCV 2017, arXiv:1610.02391 (captum's ``LayerGradCam``).
    * Soft masks of the Residual Attention Network (F. Wang et al., CVPR 2017,
      arXiv:1704.06904) and channel-attention weights of RCAN (Y. Zhang et al., ECCV 2018,
      arXiv:1807.02758), read with forward hooks on the ``sigmoid`` children of
      :class:`cervattn.layers.SoftMaskBranch` and :class:`cervattn.layers.ChannelAttention`.

Speed: integrated gradients is a loop of ``n_steps`` forward and backward passes. Two things
keep it near the cost of that loop alone: the steps are run in chunks of
``internal_batch_size`` rows (bounded memory; small chunks are as fast as large ones on CPU), and
the parameters are frozen during attribution, so autograd neither records nor computes weight
gradients (only the input gradient is needed).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from .layers import ChannelAttention, SoftMaskBranch

__all__ = [
    "METHODS",
    "METHOD_ALIASES",
    "OUTPUTS",
    "INTEGRATIONS",
    "BASELINES",
    "prepared_model",
    "make_forward",
    "apply_output",
    "make_baselines",
    "gaussian_blur",
    "auto_internal_batch_size",
    "integrated_gradients",
    "saliency",
    "smoothgrad",
    "gradcam",
    "soft_masks",
    "channel_attention",
    "find_gradcam_layer",
]

#: Attribution methods of :func:`cervattn.explain`, canonical names.
METHODS = ("integrated_gradients", "saliency", "smoothgrad", "gradcam", "soft_mask", "channel_attention")

#: Accepted short names.
METHOD_ALIASES = {
    "ig": "integrated_gradients",
    "gradient": "saliency",
    "grad_cam": "gradcam",
    "grad-cam": "gradcam",
    "soft_masks": "soft_mask",
    "ran_mask": "soft_mask",
    "ca": "channel_attention",
}

#: What is attributed: the raw class score, its log-softmax, or its softmax probability (the paper).
OUTPUTS = ("logit", "log_softmax", "softmax")

#: Integration rules of captum's IntegratedGradients (its ``method`` argument).
INTEGRATIONS = ("gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid")

#: Named integrated-gradients baselines (or pass a tensor in normalised space).
BASELINES = ("black", "white", "mean", "blurred", "noise")

# Hook registries of nn.Module that attribution code may add to (captum's layer methods, ours).
_HOOK_DICTS = (
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
    "_backward_hooks",
    "_backward_pre_hooks",
)


@contextmanager
def prepared_model(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode with frozen parameters; restore everything on exit.

    Restored on exit, also when an exception is raised: the ``training`` flag of every
    submodule (so mixed modes survive), every parameter's ``requires_grad``, and the hook
    registries (any hook added inside the block and not removed is removed, so a failing
    attribution method cannot leave one behind).
    """
    modes = [(m, m.training) for m in model.modules()]
    flags = [(p, p.requires_grad) for p in model.parameters()]
    hooks = [(m, name, set(getattr(m, name).keys())) for m in model.modules() for name in _HOOK_DICTS
             if isinstance(getattr(m, name, None), dict)]
    try:
        model.eval()
        for p, _ in flags:
            p.requires_grad_(False)
        yield model
    finally:
        for m, training in modes:
            m.training = training
        for p, flag in flags:
            p.requires_grad_(flag)
        for m, name, before in hooks:
            registry = getattr(m, name)
            for key in [k for k in registry.keys() if k not in before]:
                del registry[key]


def apply_output(logits: torch.Tensor, output: str) -> torch.Tensor:
    """Logits to the attributed score: unchanged, log-softmax or softmax over classes."""
    if output == "logit":
        return logits
    if output == "log_softmax":
        return F.log_softmax(logits, dim=-1)
    if output == "softmax":
        return F.softmax(logits, dim=-1)
    raise _output_error(output)


def make_forward(model: nn.Module, output: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The function whose class score is attributed: logits, log-softmax or softmax."""
    if output == "logit":
        return model
    if output in OUTPUTS:
        return lambda x: apply_output(model(x), output)
    raise _output_error(output)


def _output_error(output: str) -> ValueError:
    return ValueError(
        f"output={output!r} is not supported; accepted: {', '.join(OUTPUTS)}. Use 'logit' (the "
        "default) or 'log_softmax'; 'softmax' reproduces the paper but its gradients saturate."
    )


def auto_internal_batch_size(height: int, width: int, device: torch.device) -> int:
    """Rows per forward/backward chunk: 4 images of 224x224 px on CPU, 32 on a GPU.

    The budget is in pixels, so small inputs get proportionally larger chunks. On CPU larger
    chunks are not faster (measured, docs/explain.md) but cost about 0.1 GB per row for
    DenseNet-121 at 224 px.
    """
    budget = (32 if device.type == "cuda" else 4) * 224 * 224
    return max(1, budget // max(1, height * width))


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of a ``(N, C, H, W)`` batch with reflect padding."""
    if sigma <= 0:
        return x.clone()
    radius = max(1, int(math.ceil(3.0 * sigma)))
    coords = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (coords / sigma) ** 2)
    kernel = kernel / kernel.sum()
    n, c, h, w = x.shape
    out = x.reshape(n * c, 1, h, w)
    for dim in (3, 2):
        # Reflect padding needs pad < size: truncate (and renormalise) the kernel on tiny sides.
        r = min(radius, out.shape[dim] - 1)
        k = kernel[radius - r : radius + r + 1]
        k = k / k.sum()
        weight, pad = (k.view(1, 1, 1, -1), (r, r, 0, 0)) if dim == 3 else (k.view(1, 1, -1, 1), (0, 0, r, r))
        out = F.conv2d(F.pad(out, pad, mode="reflect"), weight)
    return out.reshape(n, c, h, w)


def default_blur_sigma(height: int, width: int) -> float:
    """Blur strength used for 'blurred' baselines and faithfulness replacement: 1/16 of the side."""
    return max(height, width) / 16.0


def make_baselines(
    kind: str | torch.Tensor,
    x: torch.Tensor,
    mean: torch.Tensor,
    std: torch.Tensor,
    *,
    trial: int = 0,
    seed: int = 0,
    blur_sigma: float | None = None,
) -> torch.Tensor:
    """A baseline batch in normalised space, shaped like ``x``.

    ``mean`` and ``std`` have shape ``(C,)``. ``'black'`` is ``(0 - mean) / std`` (zeros would
    be the mean colour), ``'white'`` is ``(1 - mean) / std``, ``'mean'`` is zeros, ``'blurred'``
    is a Gaussian blur of ``x``, ``'noise'`` is uniform noise in pixel space (the paper's random
    baseline), drawn from a generator seeded with ``seed`` and ``trial`` so a batch and its images
    one by one get the same noise per image.
    """
    m = mean.to(x).view(1, -1, 1, 1)
    s = std.to(x).view(1, -1, 1, 1)
    if isinstance(kind, torch.Tensor):
        b = kind.to(device=x.device, dtype=x.dtype)
        if b.dim() == 3:
            b = b.unsqueeze(0)
        try:
            return torch.broadcast_to(b, x.shape).clone()
        except RuntimeError:
            raise ValueError(
                f"baselines tensor of shape {tuple(kind.shape)} does not broadcast to the input "
                f"shape {tuple(x.shape)}; accepted: (C, H, W), (1, C, H, W) or (N, C, H, W) in "
                "normalised space. Pass e.g. baselines=torch.zeros_like(x) or a name: "
                f"{', '.join(BASELINES)}."
            ) from None
    if kind == "black":
        return ((0.0 - m) / s).expand_as(x).clone()
    if kind == "white":
        return ((1.0 - m) / s).expand_as(x).clone()
    if kind == "mean":
        return torch.zeros_like(x)
    if kind == "blurred":
        sigma = default_blur_sigma(*x.shape[-2:]) if blur_sigma is None else blur_sigma
        return gaussian_blur(x, sigma)
    if kind == "noise":
        out = torch.empty_like(x)
        for i in range(x.shape[0]):
            # One generator per (seed, trial); every image of a batch sees the same draw as it
            # would alone, which keeps batched and one-by-one results identical.
            g = torch.Generator().manual_seed(seed * 100_003 + trial)
            u = torch.rand(x.shape[1:], generator=g, dtype=torch.float64)
            out[i] = u.to(x)
        return (out - m) / s
    raise ValueError(
        f"baselines={kind!r} is not supported; accepted: {', '.join(BASELINES)} or a tensor in "
        "normalised space. 'black' is the default; 'white' suits cells on a bright slide."
    )


def _leaf(x: torch.Tensor) -> torch.Tensor:
    """A copy of ``x`` that requires grad (captum warns when it has to set that itself)."""
    return x.detach().clone().requires_grad_()


def _chunks(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def integrated_gradients(
    forward: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    target: torch.Tensor,
    baselines: list[torch.Tensor],
    *,
    n_steps: int,
    integration: str,
    internal_batch_size: int,
) -> torch.Tensor:
    """Integrated gradients averaged over one or more baselines (the paper's noise trials).

    Images are attributed in groups small enough that each chunk of steps has at most
    ``internal_batch_size`` rows; with one image per group a batch gives exactly its images'
    one-by-one results.
    """
    from captum.attr import IntegratedGradients

    ig = IntegratedGradients(forward, multiply_by_inputs=True)
    group = max(1, internal_batch_size // n_steps)
    total = torch.zeros_like(x)
    for b in baselines:
        for sl in _chunks(x.shape[0], group):
            total[sl] += ig.attribute(
                x[sl],
                baselines=b[sl],
                target=target[sl],
                n_steps=n_steps,
                method=integration,
                internal_batch_size=internal_batch_size,
            ).detach()
    return total / len(baselines)


def saliency(
    forward: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    internal_batch_size: int,
) -> torch.Tensor:
    """Plain (signed) gradient of the target score with respect to the input."""
    from captum.attr import Saliency

    sal = Saliency(forward)
    out = torch.empty_like(x)
    for sl in _chunks(x.shape[0], internal_batch_size):
        out[sl] = sal.attribute(_leaf(x[sl]), target=target[sl], abs=False).detach()
    return out


def smoothgrad(
    forward: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    target: torch.Tensor,
    std: torch.Tensor,
    *,
    nt_samples: int,
    noise_level: float,
    internal_batch_size: int,
    seed: int,
) -> torch.Tensor:
    """SmoothGrad: the mean gradient over ``nt_samples`` noisy copies of each image.

    The noise standard deviation is ``noise_level`` times the range of a valid image in
    normalised space (``1 / std``, averaged over channels), as in the SmoothGrad paper's
    ``sigma / (x_max - x_min)``; it does not depend on the image, so results are batch invariant
    up to the random draw (seeded with ``seed``).
    """
    from captum.attr import NoiseTunnel, Saliency

    nt = NoiseTunnel(Saliency(forward))
    stdev = float(noise_level / std.mean())
    out = torch.empty_like(x)
    with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
        torch.manual_seed(seed)
        for i in range(x.shape[0]):
            out[i : i + 1] = nt.attribute(
                _leaf(x[i : i + 1]),
                nt_type="smoothgrad",
                nt_samples=nt_samples,
                nt_samples_batch_size=max(1, internal_batch_size),
                stdevs=stdev,
                target=target[i : i + 1],
                abs=False,
            ).detach()
    return out


def find_gradcam_layer(model: nn.Module, layer: str | nn.Module | None = None) -> tuple[str, nn.Module]:
    """The layer Grad-CAM looks at: ``layer`` if given, else the model's last feature stage.

    The last stage is timm's ``model.feature_info[-1]['module']`` when the model has
    ``feature_info``, otherwise the last ``nn.Conv2d``.
    """
    if isinstance(layer, nn.Module):
        for name, mod in model.named_modules():
            if mod is layer:
                return name, mod
        raise ValueError(
            f"layer {type(layer).__name__} is not a submodule of the model; pass a submodule or "
            "its name from model.named_modules()."
        )
    if isinstance(layer, str):
        try:
            return layer, model.get_submodule(layer)
        except AttributeError:
            raise ValueError(
                f"layer={layer!r} is not a submodule of the model; pass a name from "
                "[name for name, _ in model.named_modules()], e.g. the last stage."
            ) from None
    info = getattr(model, "feature_info", None)
    if info is not None:
        try:
            name = info[-1]["module"]
            return name, model.get_submodule(name)
        except (AttributeError, IndexError, KeyError, TypeError):
            pass
    convs = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError(
            "Grad-CAM needs a convolutional feature map, and this model has neither timm's "
            "feature_info nor an nn.Conv2d; pass layer= (a submodule or its name)."
        )
    return convs[-1]


def gradcam(
    forward: Callable[[torch.Tensor], torch.Tensor],
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    *,
    layer: str | nn.Module | None,
    relu_attributions: bool,
    internal_batch_size: int,
) -> tuple[torch.Tensor, str]:
    """Grad-CAM on the last feature stage, upsampled (bilinear) to the input: ``(N, 1, H, W)``."""
    from captum.attr import LayerAttribution, LayerGradCam

    name, module = find_gradcam_layer(model, layer)
    cam = LayerGradCam(forward, module)
    out = x.new_empty((x.shape[0], 1, *x.shape[-2:]))
    for sl in _chunks(x.shape[0], internal_batch_size):
        a = cam.attribute(x[sl], target=target[sl], relu_attributions=relu_attributions)
        out[sl] = LayerAttribution.interpolate(a.detach(), tuple(x.shape[-2:]), interpolate_mode="bilinear")
    return out, name


def _capture_sigmoids(
    model: nn.Module, kind: type[nn.Module], x: torch.Tensor, internal_batch_size: int
) -> dict[str, torch.Tensor]:
    """Outputs of the ``sigmoid`` children of every ``kind`` module, from plain forward passes."""
    targets = [(name, mod.sigmoid) for name, mod in model.named_modules() if isinstance(mod, kind)]
    captured: dict[str, list[torch.Tensor]] = {name: [] for name, _ in targets}
    handles = []
    try:
        for name, sig in targets:
            handles.append(sig.register_forward_hook(
                lambda _m, _i, out, name=name: captured[name].append(out.detach())
            ))
        with torch.no_grad():
            for sl in _chunks(x.shape[0], internal_batch_size):
                model(x[sl])
    finally:
        for h in handles:
            h.remove()
    return {name: torch.cat(outs) for name, outs in captured.items()}


def _no_attention_error(model: nn.Module, kind: str, other: str) -> ValueError:
    return ValueError(
        f"method={kind!r} reads the model's own attention, and {type(model).__name__} has no "
        f"{'SoftMaskBranch' if kind == 'soft_mask' else 'ChannelAttention'} layer. Use it with "
        f"{'ran_*' if kind == 'soft_mask' else 'rcan_* / rcab_*'} models ({other}), or pick a "
        "gradient method: 'integrated_gradients', 'saliency', 'smoothgrad', 'gradcam'."
    )


def soft_masks(model: nn.Module, x: torch.Tensor, *, internal_batch_size: int) -> tuple[torch.Tensor, dict]:
    """RAN soft masks: per module, mean over channels, upsampled (bilinear) to the input.

    Returns the average over modules ``(N, 1, H, W)`` and each module's map ``(N, H, W)``.
    """
    raw = _capture_sigmoids(model, SoftMaskBranch, x, internal_batch_size)
    if not raw:
        raise _no_attention_error(model, "soft_mask", "Residual Attention Network soft masks")
    maps = {}
    for name, m in raw.items():
        up = F.interpolate(m.mean(1, keepdim=True), size=x.shape[-2:], mode="bilinear", align_corners=False)
        maps[name] = up[:, 0]
    mean = torch.stack(list(maps.values())).mean(0).unsqueeze(1)
    return mean, maps


def channel_attention(model: nn.Module, x: torch.Tensor, *, internal_batch_size: int) -> dict:
    """RCAN channel-attention weights per layer, ``(N, C_layer)`` each (the sigmoid outputs)."""
    raw = _capture_sigmoids(model, ChannelAttention, x, internal_batch_size)
    if not raw:
        raise _no_attention_error(model, "channel_attention", "channel attention")
    return {name: w.flatten(1) for name, w in raw.items()}
