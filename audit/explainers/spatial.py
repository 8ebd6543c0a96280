"""Layer outputs as (B, C, h, w) feature maps, whatever their layout, and their gradients for CAM methods.

Convolutional layers give (B, C, h, w). Vision transformers give tokens (B, N, D): the class, distillation and
register tokens come first and the rest form the patch grid (as pytorch-grad-cam's ``reshape_transform`` for ViT
assumes); Swin-style stages give channels-last maps (B, h, w, C). ``to_spatial`` finds the layout from the shape
and the input's aspect ratio, and refuses what it cannot place on the image.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from ..errors import ExplainerError
from ._common import capture, target_scores

Layout = Literal["nchw", "nhwc", "tokens"]
MAX_PREFIX_TOKENS = 8  # class + distillation + register tokens before the patch grid


def _fits(h: int, w: int, size: tuple[int, int]) -> bool:
    """A (h, w) grid covers an input of ``size`` with square cells (up to the rounding of a strided layer)."""
    H, W = size
    if h < 1 or w < 1 or h > H or w > W:
        return False
    return abs((H / h) / (W / w) - 1.0) <= 0.15 and (h > 1 or w > 1 or (H, W) == (1, 1))


def _grid(n: int, size: tuple[int, int]) -> tuple[int, int] | None:
    """(h, w) with h * w = n tokens laid out on an input of ``size`` in square patches, if any."""
    H, W = size
    best = None
    for h in range(1, n + 1):
        if n % h:
            continue
        w = n // h
        if _fits(h, w, size):
            err = abs(H / h - W / w)
            if best is None or err < best[0]:
                best = (err, h, w)
    return (best[1], best[2]) if best else None


def token_grid(n_tokens: int, size: tuple[int, int]) -> tuple[int, tuple[int, int]] | None:
    """(prefix tokens, (h, w)) when the last h * w of ``n_tokens`` tokens form a patch grid on ``size``."""
    for prefix in range(min(MAX_PREFIX_TOKENS, n_tokens - 1) + 1):
        g = _grid(n_tokens - prefix, size)
        if g is not None and g[0] * g[1] > 1:
            return prefix, g
    return None


def layout_of(a: torch.Tensor, size: tuple[int, int]) -> tuple[Layout, int, tuple[int, int]]:
    """(layout, prefix tokens, grid) of one layer output for an input of ``size`` (H, W)."""
    if a.dim() == 4:
        if _fits(a.shape[2], a.shape[3], size):
            return "nchw", 0, (a.shape[2], a.shape[3])
        if _fits(a.shape[1], a.shape[2], size):
            return "nhwc", 0, (a.shape[1], a.shape[2])
    elif a.dim() == 3:
        found = token_grid(a.shape[1], size)
        if found is not None:
            return "tokens", found[0], found[1]
    raise ExplainerError(f"the layer output {tuple(a.shape)} cannot be laid out on the {size[0]}x{size[1]} input "
                         "(expected (B, C, h, w), (B, h, w, C) or (B, tokens, D)); name another layer")


def to_spatial(a: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``a`` as (B, C, h, w) (differentiable: views and permutes only)."""
    layout, prefix, (h, w) = layout_of(a, size)
    if layout == "nchw":
        return a
    if layout == "nhwc":
        return a.permute(0, 3, 1, 2)
    return a[:, prefix:, :].transpose(1, 2).reshape(a.shape[0], a.shape[2], h, w)


def activation_and_gradient(model: nn.Module, name: str, layer: nn.Module, inputs: torch.Tensor,
                            targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The layer's output A and d(target score)/dA, both as (B, C, h, w), detached."""
    with torch.enable_grad():
        x = inputs.detach().requires_grad_(True)  # makes the graph exist even for frozen parameters
        logits, acts = capture(model, {name: layer}, x)
        a = acts[name]
        if logits is None or logits.dim() != 2:
            raise ExplainerError(f"the model output {getattr(logits, 'shape', None)} is not (batch, outputs)")
        (g,) = torch.autograd.grad(target_scores(logits, targets).sum(), a)
    size = (inputs.shape[-2], inputs.shape[-1])
    return to_spatial(a.detach(), size), to_spatial(g.detach(), size)


def grad_cam(a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """ReLU(sum_c mean_hw(g_c) A_c): (B, 1, h, w)."""
    weights = g.mean(dim=(2, 3), keepdim=True)
    return (weights * a).sum(dim=1, keepdim=True).clamp_min(0)
