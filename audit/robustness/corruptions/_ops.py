"""Batched building blocks shared by the corruptions: input checks, seeded draws, padding by index (any image
size, any pad width), scipy-style Gaussian filtering, depthwise convolution, linear resampling along one axis.

Every helper works on (B, C, H, W) float tensors on the tensor's own device. Random numbers are drawn on the
generator's device and moved to the tensor's, so one CPU generator gives the same corruption on CPU and CUDA.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import Tensor

from audit.errors import DataError

# ITU-R BT.601 luma, as OpenCV's RGB2GRAY uses it (snow's grey layer)
LUMA_601 = (0.299, 0.587, 0.114)
# the weights imagecorruptions' own rgb2gray uses (spatter and frost on grey images)
LUMA_IC = (0.2989, 0.5870, 0.1140)


def check_images(x: Tensor, colour: bool = False) -> None:
    """Raise DataError unless ``x`` is a floating (B, C, H, W) batch in [0, 1] (C in {1, 3} when ``colour``)."""
    if x.ndim != 4 or not x.is_floating_point():
        raise DataError(f"corruption input must be a float tensor (B, C, H, W); got {tuple(x.shape)} {x.dtype}")
    if colour and x.shape[1] not in (1, 3):
        raise DataError(f"this corruption needs 1 (grey) or 3 (RGB) channels; got {x.shape[1]}")
    if x.numel() and (float(x.min()) < 0.0 or float(x.max()) > 1.0):
        raise DataError("corruption input must lie in [0, 1] (intensities before mean/std normalisation)")


def need_generator(generator: torch.Generator | None, name: str) -> torch.Generator:
    if generator is None:
        raise ValueError(f"{name} is random: pass a seeded torch.Generator")
    return generator


# ---------------------------------------------------------------------------------------------- seeded draws

def normal(shape: tuple[int, ...], g: torch.Generator, like: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    out = torch.randn(shape, generator=g, device=g.device, dtype=torch.float32)
    return (out * std + mean).to(device=like.device, dtype=like.dtype)


def uniform(shape: tuple[int, ...], g: torch.Generator, like: Tensor, low: float = 0.0, high: float = 1.0) -> Tensor:
    out = torch.rand(shape, generator=g, device=g.device, dtype=torch.float32)
    return (low + (high - low) * out).to(device=like.device, dtype=like.dtype)


def uniform64(n: int, g: torch.Generator, low: float, high: float) -> list[float]:
    """``n`` scalar draws in [low, high) as Python floats (angles, coefficients, per-image parameters)."""
    u = torch.rand(n, generator=g, device=g.device, dtype=torch.float64).cpu()
    return [low + (high - low) * float(v) for v in u]


def randint(high: int, shape: tuple[int, ...], g: torch.Generator, low: int = 0) -> Tensor:
    """Integers in [low, high) on the CPU."""
    return torch.randint(low, high, shape, generator=g, device=g.device).cpu()


# ---------------------------------------------------------------------------------------------- padding

def pad_index(n: int, before: int, after: int, mode: str, device: torch.device | str = "cpu") -> Tensor:
    """Source index of every position of an axis of length ``n`` padded by ``before``/``after``.

    Modes: ``edge`` (scipy 'nearest', OpenCV REPLICATE), ``reflect101`` (OpenCV's default border, torch
    'reflect': d c b | a b c d | c b a), ``symmetric`` (scipy 'reflect': c b a | a b c d | d c b). Unlike
    torch's padding, any pad width works (the pattern repeats), so tiny images take large kernels.
    """
    i = torch.arange(-before, n + after, device=device)
    if n == 1 or mode == "edge":
        return i.clamp(0, n - 1)
    if mode == "reflect101":
        period = 2 * n - 2
        i = i.remainder(period)
        return torch.where(i >= n, period - i, i)
    if mode == "symmetric":
        period = 2 * n
        i = i.remainder(period)
        return torch.where(i >= n, period - 1 - i, i)
    raise ValueError(f"unknown padding mode {mode!r}")


def pad2d(x: Tensor, ph: int, pw: int, mode: str) -> Tensor:
    """Pad the last two axes by (ph, pw) on both sides."""
    if ph:
        x = x.index_select(-2, pad_index(x.shape[-2], ph, ph, mode, x.device))
    if pw:
        x = x.index_select(-1, pad_index(x.shape[-1], pw, pw, mode, x.device))
    return x


# ---------------------------------------------------------------------------------------------- filtering

@lru_cache(maxsize=64)
def gaussian_kernel1d(sigma: float, truncate: float = 4.0) -> Tensor:
    """scipy.ndimage's kernel: exp(-x^2 / 2 sigma^2) on x in [-r, r], r = int(truncate * sigma + 0.5), sum 1."""
    r = int(truncate * float(sigma) + 0.5)
    xs = torch.arange(-r, r + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (xs / float(sigma)) ** 2) if sigma > 0 else (xs == 0).double()
    return k / k.sum()


def _shifted_sum(xp: Tensor, taps: list[tuple[int, int, float]], h: int, w: int) -> Tensor:
    """sum of weight * xp[..., i:i + h, j:j + w] over taps (i, j, weight): one fused add per tap."""
    i0, j0, w0 = taps[0]
    out = xp[..., i0:i0 + h, j0:j0 + w] * w0
    for i, j, wt in taps[1:]:
        out.add_(xp[..., i:i + h, j:j + w], alpha=wt)
    return out


def correlate1d(x: Tensor, kernel: Tensor, dim: int, mode: str) -> Tensor:
    """Correlate the last-two-axes ``dim`` (-2 rows, -1 columns) of (B, C, H, W) with a 1-D kernel."""
    r = (len(kernel) - 1) // 2
    h, w = x.shape[-2:]
    ks = [float(v) for v in kernel]
    if dim == -2:
        return _shifted_sum(pad2d(x, r, 0, mode), [(i, 0, v) for i, v in enumerate(ks)], h, w)
    return _shifted_sum(pad2d(x, 0, r, mode), [(0, j, v) for j, v in enumerate(ks)], h, w)


def gaussian_filter(x: Tensor, sigma: float | tuple[float, float], mode: str = "edge",
                    truncate: float = 4.0) -> Tensor:
    """Separable Gaussian over H and W per channel, as ``skimage.filters.gaussian`` / ``scipy.ndimage.
    gaussian_filter`` (default mode 'nearest' = ``edge``; scipy 'reflect' = ``symmetric``)."""
    sh, sw = (sigma, sigma) if isinstance(sigma, (int, float)) else sigma
    x = correlate1d(x, gaussian_kernel1d(sh, truncate), -2, mode)
    return correlate1d(x, gaussian_kernel1d(sw, truncate), -1, mode)


def correlate2d(x: Tensor, kernel: Tensor, mode: str, fft_above: int = 64) -> Tensor:
    """Correlate every channel of (B, C, H, W) with one odd-sized 2-D kernel (OpenCV's filter2D): shifted sums
    over the non-zero taps, or an FFT product when there are more than ``fft_above`` of them (float32 FFT
    error ~1e-6, as OpenCV's own DFT path for large kernels)."""
    kh, kw = kernel.shape
    h, w = x.shape[-2:]
    xp = pad2d(x, kh // 2, kw // 2, mode)
    nz = torch.nonzero(kernel).tolist()
    if len(nz) <= fft_above:
        return _shifted_sum(xp, [(i, j, float(kernel[i, j])) for i, j in nz], h, w) if nz else x * 0
    size = xp.shape[-2:]
    k = torch.zeros(size, dtype=x.dtype, device=x.device)
    k[:kh, :kw] = kernel.to(x).flip(0, 1)
    full = torch.fft.irfft2(torch.fft.rfft2(xp) * torch.fft.rfft2(k), s=size)
    return full[..., kh - 1:kh - 1 + h, kw - 1:kw - 1 + w]


# ---------------------------------------------------------------------------------------------- resampling

def linear_axis(x: Tensor, coords: Tensor, dim: int, mode: str = "edge") -> Tensor:
    """Sample ``x`` along axis ``dim`` at float ``coords`` (1-D, shared by the batch) by linear interpolation;
    neighbours outside the axis come from ``pad_index``'s ``mode`` (scipy's order-1 spline)."""
    n = x.shape[dim]
    lo = torch.floor(coords)
    frac = (coords - lo).to(x.dtype)
    lo = lo.long()
    first = int(lo.min()) if len(lo) else 0
    before = max(0, -first)
    after = max(0, int(lo.max()) + 2 - n) if len(lo) else 0
    idx = pad_index(n, before, after, mode, x.device)
    i0 = idx[lo + before]
    i1 = idx[lo + 1 + before]
    shape = [1] * x.ndim
    shape[dim] = -1
    f = frac.to(x.device).view(shape)
    return x.index_select(dim, i0.to(x.device)) * (1 - f) + x.index_select(dim, i1.to(x.device)) * f


def grey(x: Tensor, weights: tuple[float, float, float] = LUMA_601) -> Tensor:
    """(B, 1, H, W) luma of an RGB batch; a grey batch is returned as it is."""
    if x.shape[1] == 1:
        return x
    w = torch.tensor(weights, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def next_power_of_2(n: int) -> int:
    return 1 if n <= 1 else 2 ** (n - 1).bit_length()
