"""Layer activations of concept and counterexample images, and directional derivatives of class logits.

``flatten`` (Kim et al.): a layer's output (B, ...) becomes one vector per image, (B, C*h*w) for a convolution,
(B, tokens*D) for a transformer block; the CAV lives in that space and the directional derivative is the dot
product of the logit's gradient with it. ``mean``: (B, C, h, w) / (B, h, w, C) are averaged over positions and
(B, tokens, D) over all tokens (class token included) to (B, C) / (B, D); the CAV v is then applied at every
position (the activation moves by v everywhere), so the directional derivative is the gradient summed over
positions, dotted with v.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import torch
from torch import nn

from ..errors import ExplainerError
from ..explainers._common import capture
from ..explainers.spatial import layout_of

Pooling = Literal["flatten", "mean"]


def _pool_axes(a: torch.Tensor, size: tuple[int, int]) -> tuple[int, ...]:
    """The axes ``mean`` pooling averages over for one layer output."""
    if a.dim() == 4:
        try:
            layout = layout_of(a, size)[0]
        except ExplainerError:
            layout = "nchw"
        return (1, 2) if layout == "nhwc" else (2, 3)
    if a.dim() == 3:
        return (1,)
    return ()


def features(a: torch.Tensor, pooling: Pooling, size: tuple[int, int]) -> torch.Tensor:
    """(B, D) float32 vectors of one layer output."""
    if pooling == "mean":
        axes = _pool_axes(a, size)
        if axes:
            a = a.float().mean(dim=axes)
    return a.float().reshape(a.shape[0], -1)


def gradient_features(g: torch.Tensor, pooling: Pooling, size: tuple[int, int]) -> torch.Tensor:
    """(B, D) gradients in the space of ``features``: d logit / d epsilon of a + epsilon * v is their dot product
    with v (summed over positions under ``mean``, where v is applied at every position)."""
    if pooling == "mean":
        axes = _pool_axes(g, size)
        if axes:
            g = g.float().sum(dim=axes)
    return g.float().reshape(g.shape[0], -1)


def layer_activations(model: nn.Module, layers: Mapping[str, nn.Module], x: torch.Tensor, pooling: Pooling,
                      device: torch.device, batch_size: int = 64) -> dict[str, np.ndarray]:
    """{layer: (n, D) float32 activations} for images ``x`` (n, C, H, W); each forward stops after the last of
    ``layers`` has run."""
    size = (int(x.shape[-2]), int(x.shape[-1]))
    out: dict[str, list[np.ndarray]] = {name: [] for name in layers}
    with torch.no_grad():
        for s in range(0, x.shape[0], batch_size):
            _, acts = capture(model, dict(layers), x[s:s + batch_size].to(device), stop_early=True)
            for name in layers:
                out[name].append(features(acts[name], pooling, size).cpu().numpy())
    return {name: (np.concatenate(v) if v else np.zeros((0, 0), dtype=np.float32)) for name, v in out.items()}


def directional_derivatives(model: nn.Module, target_model: nn.Module, layers: Sequence[str],
                            directions: Mapping[str, torch.Tensor], x: torch.Tensor, target: int, pooling: Pooling,
                            device: torch.device, batch_size: int = 32) -> dict[str, np.ndarray]:
    """{layer: (n, k) S = grad_layer(logit_target) . v for each of the layer's k unit CAVs (rows of
    ``directions[layer]``)}. One forward and one backward pass per image for all layers; ``target_model``
    (the task's explanation model, whose output column ``target`` is the logit) runs, ``model``'s modules are
    hooked."""
    modules = dict(model.named_modules())
    mods = {name: modules[name] for name in layers}
    size = (int(x.shape[-2]), int(x.shape[-1]))
    dirs = {name: directions[name].to(device=device, dtype=torch.float32) for name in layers}
    out: dict[str, list[np.ndarray]] = {name: [] for name in layers}
    with torch.enable_grad():
        for s in range(0, x.shape[0], batch_size):
            xb = x[s:s + batch_size].to(device).requires_grad_(True)  # a graph even when the weights are frozen
            logits, acts = capture(target_model, mods, xb, stop_early=False)
            if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or not 0 <= target < logits.shape[1]:
                shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
                raise ExplainerError(f"TCAV needs (batch, outputs) logits with column {target}; got {shape}")
            # samples are independent in eval mode, so the gradient of the sum is each sample's own gradient
            grads = torch.autograd.grad(logits[:, target].sum(), [acts[name] for name in layers])
            for name, g in zip(layers, grads, strict=True):
                gf = gradient_features(g.detach(), pooling, size)
                out[name].append((gf @ dirs[name].T).cpu().numpy().astype(np.float64))
    return {name: (np.concatenate(v) if v else np.zeros((0, dirs[name].shape[0]))) for name, v in out.items()}
