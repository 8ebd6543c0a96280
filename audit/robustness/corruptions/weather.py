"""Snow and fog of ImageNet-C (Hendrycks & Dietterich 2019), definitions and parameters as ``imagecorruptions``
1.1.2 (Apache-2.0) gives them; own batched code (frost: ``frost.py``; spatter: ``spatter.py``).

- fog: x + c1 F, F a plasma fractal (diamond-square, wibble 100 decaying by c2 per octave, normalised to
  [0, 1]) of side the next power of two of the image's longer side, then rescaled by max(x) / (max(x) + c1)
- snow: a N(c1, c2^2) layer zoomed by c3 (centre crop), values below c4 set to 0, clipped, motion-blurred
  (radius c5, sigma c6, angle in [-135, -45) degrees) and quantised to 8 bits; the image is lightened to
  c7 x + (1 - c7) max(x, 1.5 luma(x) + 0.5) and the layer and its 180-degree rotation added
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._base import Corruption
from ._ops import LUMA_601, grey, next_power_of_2, normal, uniform, uniform64
from .blur import clipped_zoom, motion_blur_at

SOURCE = "Hendrycks & Dietterich (2019), ImageNet-C; definitions and parameters of imagecorruptions 1.1.2"


def plasma_fractal(batch: int, size: int, decay: float, g: torch.Generator, like: Tensor) -> Tensor:
    """(batch, size, size) diamond-square height maps in [0, 1]; ``size`` a power of two."""
    m = torch.zeros(batch, size, size, device=like.device, dtype=torch.float64)
    step, wibble = size, 100.0
    dbl = torch.empty(0, dtype=torch.float64, device=like.device)

    def noisy(sums: Tensor) -> Tensor:
        return sums / 4 + wibble * uniform(tuple(sums.shape), g, dbl, -wibble, wibble)

    while step >= 2:
        half = step // 2
        corners = m[:, 0::step, 0::step]
        squares = corners + corners.roll(-1, 1)
        squares = squares + squares.roll(-1, 2)
        m[:, half::step, half::step] = noisy(squares)
        dr = m[:, half::step, half::step]
        ul = m[:, 0::step, 0::step]
        m[:, 0::step, half::step] = noisy(dr + dr.roll(1, 1) + ul + ul.roll(-1, 2))
        m[:, half::step, 0::step] = noisy(dr + dr.roll(1, 2) + ul + ul.roll(-1, 1))
        step //= 2
        wibble /= decay
    m = m - m.amin((1, 2), keepdim=True)
    return (m / m.amax((1, 2), keepdim=True).clamp(min=1e-300)).to(like.dtype)


def fog_at(x: Tensor, c: tuple[float, float], fractal: Tensor) -> Tensor:
    """Fog with a given (B, S, S) fractal, S >= H, W (the deterministic part of ``fog``)."""
    h, w = x.shape[-2:]
    top = x.amax((1, 2, 3), keepdim=True)
    y = x + c[0] * fractal.to(x)[:, None, :h, :w]
    return y * top / (top + c[0])


def fog(x: Tensor, c: tuple[float, float], g: torch.Generator) -> Tensor:
    b, _, h, w = x.shape
    return fog_at(x, c, plasma_fractal(b, next_power_of_2(max(h, w)), c[1], g, x))


def snow_at(x: Tensor, c: tuple[float, ...], layer: Tensor, angles: list[float]) -> Tensor:
    """Snow from a given N(c1, c2^2) layer (B, 1, H, W) and blur angles (the deterministic part of ``snow``)."""
    _, _, zoom, thresh, radius, sigma, keep = c
    h, w = x.shape[-2:]
    layer = clipped_zoom(layer.to(x), zoom)
    layer = torch.where(layer < thresh, torch.zeros_like(layer), layer).clamp(0, 1)
    layer = motion_blur_at(layer, radius, sigma, angles)
    layer = torch.round(layer * 255)[..., :h, :w] / 255
    lifted = keep * x + (1 - keep) * torch.maximum(x, grey(x, LUMA_601) * 1.5 + 0.5)
    return lifted + layer + layer.flip(-2, -1)


def snow(x: Tensor, c: tuple[float, ...], g: torch.Generator) -> Tensor:
    b, _, h, w = x.shape
    layer = normal((b, 1, h, w), g, x, c[0], c[1])
    return snow_at(x, c, layer, uniform64(b, g, -135.0, -45.0))


CORRUPTIONS = (
    Corruption("snow", "weather", snow, (
        (0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7), (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
        (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65), (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55)), True, SOURCE, colour=True),
    Corruption("fog", "weather", fog, ((1.5, 2), (2.0, 2), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4)), True, SOURCE),
)
