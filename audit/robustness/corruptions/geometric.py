"""Elastic transform of ImageNet-C as ``imagecorruptions`` 1.1.2 (Apache-2.0) defines it (a modification of
Simard et al. 2003; unlike the original ImageNet-C code it has no affine part); own batched code.

Per image: two fields of U(-0.005 H, 0.005 H) values, each smoothed by a Gaussian of sigma (0.01 H, 0.01 W)
truncated at 3 sigma with symmetric borders (scipy 'reflect') and scaled by alpha; pixel (i, j) takes the
bilinear sample at (i + dy, j + dx), symmetric borders.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ._base import Corruption
from ._ops import gaussian_filter, uniform

SOURCE = "Hendrycks & Dietterich (2019), ImageNet-C; the elastic_transform of imagecorruptions 1.1.2"


def sample_bilinear(x: Tensor, rows: Tensor, cols: Tensor, padding: str = "reflection") -> Tensor:
    """x at float pixel coordinates (B, H', W') by bilinear interpolation; ``reflection`` mirrors about the
    outer pixel edges (scipy's 'reflect'), ``zeros`` reads 0 outside."""
    h, w = x.shape[-2:]
    grid = torch.stack([(2 * cols + 1) / w - 1, (2 * rows + 1) / h - 1], -1).to(x.dtype)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode=padding, align_corners=False)


def elastic_warp(x: Tensor, ux: Tensor, uy: Tensor, alpha: float) -> Tensor:
    """The deterministic part: warp by the raw (unsmoothed) uniform fields ``ux``, ``uy`` of shape (B, H, W)."""
    h, w = x.shape[-2:]
    sigma = (0.01 * h, 0.01 * w)
    dx = gaussian_filter(ux[:, None].to(x), sigma, "symmetric", truncate=3.0)[:, 0] * alpha
    dy = gaussian_filter(uy[:, None].to(x), sigma, "symmetric", truncate=3.0)[:, 0] * alpha
    ii = torch.arange(h, device=x.device, dtype=x.dtype).view(1, h, 1)
    jj = torch.arange(w, device=x.device, dtype=x.dtype).view(1, 1, w)
    return sample_bilinear(x, ii + dy, jj + dx)


def elastic_transform(x: Tensor, alpha: float, g: torch.Generator) -> Tensor:
    b, _, h, w = x.shape
    m = 0.005 * h
    fields = uniform((2, b, h, w), g, x, -m, m)
    return elastic_warp(x, fields[0], fields[1], alpha)


CORRUPTIONS = (
    Corruption("elastic_transform", "digital", elastic_transform,
               (250 * 0.05, 250 * 0.065, 250 * 0.085, 250 * 0.1, 250 * 0.12), True, SOURCE),
)
