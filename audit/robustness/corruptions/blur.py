"""Blur corruptions of ImageNet-C (Hendrycks & Dietterich 2019), parameters and definitions as
``imagecorruptions`` 1.1.2 (Apache-2.0) gives them; own batched code.

- defocus_blur: correlation with an anti-aliased disk (radius r on a 17 x 17 grid, or (2r + 1)^2 when r > 8,
  smoothed by a 3 x 3 / 5 x 5 Gaussian of sigma ``alias``), OpenCV's reflect-101 border
- glass_blur: Gaussian blur, quantise to 8 bits, then for each iteration a raster sweep (bottom-right to top-left)
  in which every pixel takes the value of a random neighbour at offsets in [-d, d) (the reference's "swap"
  copies, see ``glass_sources``), then Gaussian blur again
- motion_blur: a one-sided Gaussian line kernel (2r + 1 taps, weight of tap i proportional to exp(-i^2 / 2 s^2))
  along a random angle in [-45, 45) degrees, shifts rounded as the reference rounds them, edges replicated; taps
  that would shift by a full image side are dropped (as the reference stops there)
- zoom_blur: mean of the image and its centre crops zoomed by each factor (order-1 spline, scipy.ndimage.zoom's
  corner-aligned grid and its zeros where a coordinate overshoots by rounding; the zoomed crop's top-left
  H x W is kept)
- gaussian_blur: Gaussian of sigma c, truncated at 4 sigma, edges replicated (skimage.filters.gaussian)

The glass-blur sweep is serial by definition; it runs on index arrays (CPU, vectorised over the batch) and the
resulting gather is applied on the images' device.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from ._base import Corruption
from ._ops import correlate1d, correlate2d, gaussian_filter, linear_axis, pad2d, randint, uniform64

SOURCE = "Hendrycks & Dietterich (2019), ImageNet-C; definitions and parameters of imagecorruptions 1.1.2"


@lru_cache(maxsize=16)
def disk_kernel(radius: int, alias_blur: float) -> Tensor:
    """The anti-aliased disk of ``defocus_blur`` (float64, sums to 1 before the alias blur)."""
    half, ksize = (8, 3) if radius <= 8 else (radius, 5)
    ls = torch.arange(-half, half + 1, dtype=torch.float64)
    disk = ((ls[:, None] ** 2 + ls[None, :] ** 2) <= radius ** 2).double()
    disk = disk / disk.sum()
    t = torch.arange(ksize, dtype=torch.float64) - (ksize - 1) / 2  # OpenCV getGaussianKernel(ksize, sigma)
    g = torch.exp(-t ** 2 / (2 * alias_blur ** 2))
    g = g / g.sum()
    d = disk[None, None]
    d = correlate1d(correlate1d(d, g, -2, "reflect101"), g, -1, "reflect101")
    return d[0, 0]


def defocus_blur(x: Tensor, c: tuple[int, float], g: torch.Generator | None = None) -> Tensor:
    return correlate2d(x, disk_kernel(*c), "reflect101")


def gaussian_blur(x: Tensor, sigma: float, g: torch.Generator | None = None) -> Tensor:
    return gaussian_filter(x, sigma, "edge")


def glass_steps(h: int, w: int, delta: int) -> int:
    """Pixels one sweep visits: rows h - d .. d + 1 by columns w - d .. d + 1 (bottom-right first)."""
    return max(h - 2 * delta, 0) * max(w - 2 * delta, 0)


def glass_sources(h: int, w: int, delta: int, offsets: np.ndarray) -> np.ndarray:
    """(B, h * w) source pixel of each output pixel after the sweeps; ``offsets`` (iterations, steps, B, 2)
    holds each step's (dx, dy) in [-d, d), in the reference's drawing order.

    The reference's swap ``x[h, w], x[h', w'] = x[h', w'], x[h, w]`` assigns through NumPy views of RGB pixels,
    so it copies: pixel (h, w) takes its neighbour's value and the neighbour keeps its own. ImageNet-C was
    generated that way, so it is reproduced here."""
    batch = offsets.shape[2]
    src = np.tile(np.arange(h * w), (batch, 1))
    rows = np.arange(batch)
    for sweep in offsets:
        shift = sweep[:, :, 1] * w + sweep[:, :, 0]
        s = 0
        for hh in range(h - delta, delta, -1):
            for ww in range(w - delta, delta, -1):
                a = hh * w + ww
                src[:, a] = src[rows, a + shift[s]]
                s += 1
    return src


def glass_blur_at(x: Tensor, sigma: float, delta: int, offsets: np.ndarray) -> Tensor:
    """Glass blur with given sweep offsets (the deterministic part of ``glass_blur``)."""
    b, ch, h, w = x.shape
    y = torch.floor(gaussian_filter(x, sigma, "edge").clamp(0, 1) * 255) / 255  # the reference's np.uint8(...)
    src = torch.from_numpy(glass_sources(h, w, delta, offsets)).to(x.device)
    y = y.reshape(b, ch, h * w).gather(2, src[:, None, :].expand(b, ch, h * w)).reshape(b, ch, h, w)
    return gaussian_filter(y, sigma, "edge")


def glass_blur(x: Tensor, c: tuple[float, int, int], g: torch.Generator) -> Tensor:
    sigma, delta, iterations = c
    b, _, h, w = x.shape
    offsets = randint(delta, (iterations, glass_steps(h, w, delta), b, 2), g, low=-delta).numpy()
    return glass_blur_at(x, sigma, delta, offsets)


@lru_cache(maxsize=16)
def motion_kernel(radius: int, sigma: float) -> np.ndarray:
    width = 2 * radius + 1
    k = np.exp(-np.arange(width) ** 2 / (2 * sigma ** 2)) / (np.sqrt(2 * np.pi) * sigma)
    return k / k.sum()


def motion_blur_at(x: Tensor, radius: int, sigma: float, angles: list[float]) -> Tensor:
    """Motion blur of image b along ``angles[b]`` degrees (the deterministic part of ``motion_blur``)."""
    b, _, h, w = x.shape
    kernel = motion_kernel(radius, sigma)
    width = len(kernel)
    dys = np.zeros((b, width), dtype=np.int64)
    dxs = np.zeros((b, width), dtype=np.int64)
    weights = np.zeros((b, width))
    for j, angle in enumerate(angles):
        p0, p1 = width * np.sin(np.deg2rad(angle)), width * np.cos(np.deg2rad(angle))
        hyp = math.hypot(p0, p1)
        for i in range(width):
            dy, dx = -math.ceil(i * p0 / hyp - 0.5), -math.ceil(i * p1 / hyp - 0.5)
            if abs(dy) >= h or abs(dx) >= w:
                break
            dys[j, i], dxs[j, i], weights[j, i] = dy, dx, kernel[i]
    reach = int(max(np.abs(dys).max(), np.abs(dxs).max())) if b else 0
    xp = pad2d(x, reach, reach, "edge")  # a shift clamps at the border: replicate padding
    out = torch.zeros_like(x)
    for j in range(b):
        for i in np.flatnonzero(weights[j]):
            top, left = reach - int(dys[j, i]), reach - int(dxs[j, i])
            out[j] += float(weights[j, i]) * xp[j, :, top:top + h, left:left + w]
    return out


def motion_blur(x: Tensor, c: tuple[int, float], g: torch.Generator) -> Tensor:
    return motion_blur_at(x, c[0], c[1], uniform64(x.shape[0], g, -45.0, 45.0))


@lru_cache(maxsize=256)
def zoom_coords(n: int, factor: float) -> tuple[Tensor, Tensor]:
    """Input coordinates (float64) of every output of the reference's clipped_zoom along an axis of length n:
    the centre crop ceil(n / z) zoomed to round(crop * z) samples on scipy's corner-aligned grid; and which of
    them scipy reads as inside the crop (its 'constant' mode gives 0 where k * (crop - 1) / (out - 1) overshoots
    crop - 1 by rounding, e.g. the last of 36 rows at z = 1.2000000000000002)."""
    crop = int(np.ceil(n / float(factor)))
    top = (n - crop) // 2
    out = round(crop * factor)  # half to even, as scipy.ndimage.zoom rounds
    ratio = (crop - 1) / (out - 1) if out > 1 else 1.0
    rel = torch.from_numpy(np.arange(out, dtype=np.float64) * ratio)
    return top + rel, (rel >= 0) & (rel <= crop - 1)


def clipped_zoom(x: Tensor, factor: float) -> Tensor:
    """The zoomed centre crop, full size (at least H x W; callers crop its top-left corner)."""
    h, w = x.shape[-2:]
    rows, row_ok = zoom_coords(h, factor)
    cols, col_ok = zoom_coords(w, factor)
    y = linear_axis(linear_axis(x, rows, -2), cols, -1)
    inside = (row_ok[:, None] & col_ok[None, :]).to(device=x.device, dtype=x.dtype)
    return y * inside


def zoom_blur(x: Tensor, factors: tuple[float, ...], g: torch.Generator | None = None) -> Tensor:
    h, w = x.shape[-2:]
    out = x.clone()
    for z in factors:
        out += clipped_zoom(x, z)[..., :h, :w]
    return out / (len(factors) + 1)


ZOOMS = tuple(tuple(float(v) for v in np.arange(1, stop, step))
              for stop, step in ((1.11, 0.01), (1.16, 0.01), (1.21, 0.02), (1.26, 0.02), (1.31, 0.03)))

CORRUPTIONS = (
    Corruption("defocus_blur", "blur", defocus_blur, ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)),
               False, SOURCE),
    Corruption("glass_blur", "blur", glass_blur,
               ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)), True, SOURCE),
    Corruption("motion_blur", "blur", motion_blur, ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15)), True, SOURCE),
    Corruption("zoom_blur", "blur", zoom_blur, ZOOMS, False, SOURCE),
    Corruption("gaussian_blur", "blur", gaussian_blur, (1, 2, 3, 4, 6), False, SOURCE),
)
