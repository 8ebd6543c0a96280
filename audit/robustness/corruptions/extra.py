"""Acquisition corruptions outside ImageNet-C: exposure, gamma, resolution loss and JPEG at stated qualities.
These definitions and their five levels are ours (plain photographic arithmetic), not a published benchmark's.

- underexposure / overexposure: x 2^(-EV) / x 2^EV (clipped), EV in stops
- gamma_dark / gamma_bright: x^gamma / x^(1 / gamma)
- low_resolution / low_resolution_nearest: area-average downscale by an integer-or-not factor f (output side
  max(1, round(side / f))), then bilinear (half-pixel centres) or nearest upscale back to the input size
- jpeg_quality: a real JPEG encode / decode per image with Pillow at the stated quality (``Corruption.at(x, q)``
  takes any quality 1-95)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ._base import Corruption
from .digital import jpeg_compression

SOURCE = "model-audit definitions (exposure in stops, gamma, area downscale + upscale, Pillow JPEG)"


def exposure(x: Tensor, ev: float, g: torch.Generator | None = None) -> Tensor:
    """Exposure changed by ``ev`` stops (negative darkens)."""
    return x * (2.0 ** ev)


def gamma(x: Tensor, value: float, g: torch.Generator | None = None) -> Tensor:
    return x.clamp(min=0) ** value


def resolution_loss(x: Tensor, factor: float, mode: str = "bilinear") -> Tensor:
    h, w = x.shape[-2:]
    small = F.adaptive_avg_pool2d(x, (max(1, round(h / factor)), max(1, round(w / factor))))
    if mode == "nearest":
        return F.interpolate(small, size=(h, w), mode="nearest-exact")
    return F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)


CORRUPTIONS = (
    Corruption("underexposure", "acquisition", lambda x, ev, g=None: exposure(x, -ev), (0.5, 1.0, 1.5, 2.0, 3.0),
               False, SOURCE),
    Corruption("overexposure", "acquisition", exposure, (0.5, 1.0, 1.5, 2.0, 2.5), False, SOURCE),
    Corruption("gamma_dark", "acquisition", gamma, (1.5, 2.0, 2.5, 3.0, 4.0), False, SOURCE),
    Corruption("gamma_bright", "acquisition", lambda x, v, g=None: gamma(x, 1.0 / v), (1.5, 2.0, 2.5, 3.0, 4.0),
               False, SOURCE),
    Corruption("low_resolution", "acquisition", lambda x, f, g=None: resolution_loss(x, f, "bilinear"),
               (2, 3, 4, 6, 8), False, SOURCE),
    Corruption("low_resolution_nearest", "acquisition", lambda x, f, g=None: resolution_loss(x, f, "nearest"),
               (2, 3, 4, 6, 8), False, SOURCE),
    Corruption("jpeg_quality", "acquisition", jpeg_compression, (90, 70, 50, 30, 10), False, SOURCE, colour=True,
               note="Pillow JPEG encode/decode per image (8-bit)"),
)
