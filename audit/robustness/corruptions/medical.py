"""MRI artefacts as TorchIO 1.2.1 (Apache-2.0; Pérez-García et al. 2021) defines them, for 2-D images
(B, C, H, W); own batched code. TorchIO's first spatial axis is H here, its last (k-space segment) axis W.

- bias_field: x exp(sum_{i+j<=order} c_ij X^i Y^j), X, Y the pixel centres scaled to [-1, 1] along H and W
  (TorchIO's ``BiasField``; its depth terms vanish on a single slice)
- ghosting: in the centred 2-D spectrum every n-th plane along one axis (from index 0) is scaled by 1 - s,
  the central plane restored (TorchIO's ``Ghosting`` with restore = None)
- mri_motion: the image and rigid copies of it (rotation about the image centre (H/2, W/2), then translation;
  linear interpolation, the image minimum outside) fill consecutive k-space segments along W, cut at
  int(W t_k); the original spectrum takes the segment starting after t = 0.5 (TorchIO's ``Motion``, Shaw et al.
  2019). TorchIO 1.2.1 sets that centre but rebuilds each transform from its matrix without it, so its
  rotations turn about the corner voxel (measured; the tests reproduce it with ``centre=(0, 0)``); we keep the
  centre its code asks for, so that a rotation's displacement does not grow with the image size
- spike: at positions floor(p (H, W)) of the centred spectrum, max|spectrum| r is added, spike after spike
  (TorchIO's ``Spike``)

Severity scales are ours: severity s takes TorchIO's default random ranges times s / 5 (bias coefficients
U(-0.1 s, 0.1 s); ghost intensity U(0.1 s, 0.2 s) with 4-10 ghosts along a random axis; motion rotations
U(-2 s, 2 s) degrees and translations U(-0.008 s, 0.008 s) x the side (TorchIO's 10 mm on a ~250 mm field) for
two movements; spike intensity U(0.2 s, 0.6 s)), so severity 5 is TorchIO's default, except that one spike is
always added (TorchIO's default num_spikes=1 draws 0 or 1 spikes, leaving half the images clean).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._base import Corruption
from ._ops import randint, uniform, uniform64
from .geometric import sample_bilinear

SOURCE = "TorchIO 1.2.1 (Pérez-García et al. 2021) artefact definitions, 2-D; severity scaling ours"


def bias_terms(order: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(order + 1) for j in range(order + 1 - i)]


def _centred_axis(n: int, device: torch.device) -> Tensor:
    r = torch.arange(-n / 2, n / 2, device=device, dtype=torch.float64) + 0.5
    return r / r.max() if r.max() > 0 else r


def bias_field_at(x: Tensor, coefficients: Tensor, order: int = 3) -> Tensor:
    """x times the bias field of per-image ``coefficients`` (B, len(bias_terms(order)))."""
    h, w = x.shape[-2:]
    X = _centred_axis(h, x.device)[:, None]
    Y = _centred_axis(w, x.device)[None, :]
    basis = torch.stack([X ** i * Y ** j for i, j in bias_terms(order)])  # (T, H, W)
    log_field = torch.einsum("bt,thw->bhw", coefficients.to(x.device, torch.float64), basis)
    return x * torch.exp(log_field).to(x.dtype)[:, None]


def bias_field(x: Tensor, magnitude: float, g: torch.Generator) -> Tensor:
    n = len(bias_terms(3))
    return bias_field_at(x, uniform((x.shape[0], n), g, _f64(x), -magnitude, magnitude), 3)


def _f64(x: Tensor) -> Tensor:
    return torch.empty(0, dtype=torch.float64, device=x.device)


def _spectrum(x: Tensor) -> Tensor:
    return torch.fft.fftshift(torch.fft.fft2(x.double()), dim=(-2, -1))


def _image(spectrum: Tensor, like: Tensor) -> Tensor:
    return torch.fft.ifft2(torch.fft.ifftshift(spectrum, dim=(-2, -1))).real.to(like.dtype)


def ghosting_at(x: Tensor, num_ghosts: list[int], axes: list[int], intensity: list[float]) -> Tensor:
    """Ghosting per image: ``axes[b]`` 0 = H, 1 = W."""
    b, _, h, w = x.shape
    mask = torch.ones(b, 1, h, w, dtype=torch.float64, device=x.device)
    for i, (n, ax, s) in enumerate(zip(num_ghosts, axes, intensity, strict=True)):
        if not n or not s:
            continue
        size = (h, w)[ax]
        scale = torch.ones(size, dtype=torch.float64, device=x.device)
        scale[::n] = 1 - s
        scale[size // 2] = 1.0  # the restored centre
        mask[i, 0] = scale[:, None].expand(h, w) if ax == 0 else scale[None, :].expand(h, w)
    return _image(_spectrum(x) * mask, x)


def ghosting(x: Tensor, level: float, g: torch.Generator) -> Tensor:
    b = x.shape[0]
    return ghosting_at(x, randint(11, (b,), g, low=4).tolist(), randint(2, (b,), g).tolist(),
                       uniform64(b, g, 0.5 * level, level))


def rigid(x: Tensor, degrees: float, shift: tuple[float, float], centre: tuple[float, float] | None = None) -> Tensor:
    """Output (r, c) samples x at R((r, c) - centre) + centre + shift (centre (H/2, W/2) unless given); the
    image minimum outside."""
    h, w = x.shape[-2:]
    cr, cw = (h / 2, w / 2) if centre is None else centre
    t = math.radians(degrees)
    rr = torch.arange(h, device=x.device, dtype=torch.float64)[:, None] - cr
    cc = torch.arange(w, device=x.device, dtype=torch.float64)[None, :] - cw
    src_r = math.cos(t) * rr - math.sin(t) * cc + cr + shift[0]
    src_c = math.sin(t) * rr + math.cos(t) * cc + cw + shift[1]
    out = sample_bilinear(x, src_r.float()[None].expand(len(x), h, w), src_c.float()[None].expand(len(x), h, w),
                          "border")
    inside = (src_r >= -0.5) & (src_r <= h - 0.5) & (src_c >= -0.5) & (src_c <= w - 0.5)
    low = x.amin((1, 2, 3), keepdim=True)
    return torch.where(inside.to(x.device)[None, None], out, low)


def mri_motion_at(x: Tensor, degrees: list[float], shifts: list[tuple[float, float]], times: list[float],
                  centre: tuple[float, float] | None = None) -> Tensor:
    """The motion artefact of given movements (the same for the whole batch); ``centre``: see ``rigid``."""
    w = x.shape[-1]
    spectra = [_spectrum(x)] + [_spectrum(rigid(x, d, s, centre)) for d, s in zip(degrees, shifts, strict=True)]
    late = [i for i, t in enumerate(times) if t > 0.5]
    k = late[0] if late else len(spectra) - 1
    spectra[0], spectra[k] = spectra[k], spectra[0]
    cuts = [int(w * t) for t in times] + [w]
    out = torch.empty_like(spectra[0])
    start = 0
    for spec, end in zip(spectra, cuts, strict=True):
        out[..., start:end] = spec[..., start:end]
        start = end
    return _image(out, x)


def mri_motion(x: Tensor, level: tuple[float, float], g: torch.Generator, movements: int = 2) -> Tensor:
    deg, frac = level
    h, w = x.shape[-2:]
    step = 1 / (movements + 1)
    outs = []
    for i in range(x.shape[0]):
        d = uniform64(movements, g, -deg, deg)
        sh = uniform64(movements, g, -frac * h, frac * h)
        sw = uniform64(movements, g, -frac * w, frac * w)
        jitter = uniform64(movements, g, -0.3 * step, 0.3 * step)
        times = [(k + 1) * step + jitter[k] for k in range(movements)]
        outs.append(mri_motion_at(x[i:i + 1], d, list(zip(sh, sw, strict=True)), times))
    return torch.cat(outs)


def spike_at(x: Tensor, positions: Tensor, intensity: Tensor) -> Tensor:
    """Spikes at ``positions`` (B, n, 2) in [0, 1) with ratios ``intensity`` (B,), per channel."""
    b, _, h, w = x.shape
    spec = _spectrum(x)
    rows = (positions[..., 0] * h).floor().long().clamp(0, h - 1)
    cols = (positions[..., 1] * w).floor().long().clamp(0, w - 1)
    ib = torch.arange(b, device=x.device)
    for k in range(positions.shape[1]):
        peak = spec.abs().amax((2, 3))  # (B, C), after the spikes added so far
        spec[ib, :, rows[:, k], cols[:, k]] += peak * intensity.to(peak)[:, None]
    return _image(spec, x)


def spike(x: Tensor, level: float, g: torch.Generator) -> Tensor:
    b = x.shape[0]
    pos = uniform((b, 1, 2), g, _f64(x))
    return spike_at(x, pos, uniform((b,), g, _f64(x), 0.2 * level, 0.6 * level))


def _levels(scale: float) -> tuple[float, ...]:
    return tuple(round(scale * s, 6) for s in range(1, 6))


CORRUPTIONS = (
    Corruption("bias_field", "medical", bias_field, _levels(0.1), True, SOURCE),
    Corruption("ghosting", "medical", ghosting, _levels(0.2), True, SOURCE),
    Corruption("mri_motion", "medical", mri_motion, tuple(zip(_levels(2.0), _levels(0.008), strict=True)),
               True, SOURCE),
    Corruption("spike", "medical", spike, _levels(1.0), True, SOURCE),
)
