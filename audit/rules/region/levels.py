"""Acquisition levels: how low the resolution, how blurred, how JPEG-blocked and how noisy an image (or one region
of it) is, and degradations that give an image the level of another.

A site or scanner that rides along with a class leaves its acquisition on every image it took. Each kind is its own
edit of the ``acquisition`` rule: the level of a donor of group g is measured and the sample is degraded until it
has that level (test); the control gives it the level of a donor of a third group. A degradation can be added but
not taken away, so these edits are measured in one direction only (insertion). Levels are measured on the region
the edit acts on (the background when ROIs are known), in luma of the un-normalised [0, 1] image:

- ``resolution``: the share of pixel boundaries where the image changes at all (a nearest-upsampled image is
  constant inside each block); the level is the upsampling factor f = side / effective side. The edit: area
  downscale by f and nearest upscale (``robustness.corruptions.extra.resolution_loss``).
- ``blur``: log of the energy of the finest detail (the image minus its Gaussian blur at 1 px) over that of coarser
  detail (minus its blur at 4 px); lower is blurrier, unchanged by brightness and contrast. The edit: a Gaussian
  blur whose sigma, chosen per sample on a grid, brings the sample to the donor's level.
- ``jpeg``: blockiness, the mean step across the 8-pixel block boundaries of the model input over the mean step
  elsewhere (1 for an image without blocks). The edit: a real JPEG round trip (Pillow, via
  ``robustness.corruptions.digital.jpeg_compression``) at the quality, chosen per sample on a grid, that brings it to
  the donor's blockiness. Inputs resized from their files lose that grid; blur and spectrum still see the softening.
- ``noise``: the standard deviation of sensor-like noise per channel (Immerkær 1996: a Laplacian-difference mask,
  mean absolute response). The edit: Gaussian noise of variance σ_donor² − σ_sample² in every channel, seeded.

A donor whose level is not worse than the sample's leaves it unchanged (parameter 0: identity).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ...robustness.corruptions.digital import jpeg_compression
from ...robustness.corruptions.extra import resolution_loss
from .._shortcuts import LUMA, gaussian_blur

LEVEL_EDITS = ("resolution", "blur", "jpeg", "noise")
BLOCK = 8  # JPEG's block size in pixels
JPEG_QUALITIES = (90, 70, 50, 35, 25, 18, 12, 8, 5)
FINE, COARSE = 1.0, 4.0  # blur measure: Gaussian sigmas (px) of the fine and coarse detail bands
WORSE = {"resolution": 0.15, "blur": 0.1, "jpeg": 0.05, "noise": 0.1}  # margin before a donor's level counts as worse
_IMMERKAER = torch.tensor([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]]).view(1, 1, 3, 3)


def luma(raw: torch.Tensor) -> torch.Tensor:
    if raw.shape[1] == 3:
        return (raw * torch.tensor(LUMA, dtype=raw.dtype, device=raw.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
    return raw.mean(1, keepdim=True)


def _steps(y: torch.Tensor, mask: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Absolute steps between neighbours along ``dim`` (-1 columns, -2 rows) and where both lie in ``mask``."""
    n = y.shape[dim]
    a, b = y.narrow(dim, 1, n - 1), y.narrow(dim, 0, n - 1)
    ma, mb = mask.narrow(dim, 1, n - 1), mask.narrow(dim, 0, n - 1)
    return (a - b).abs(), ma * mb


def _resolution(y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    factors = []
    for dim in (-1, -2):
        d, v = _steps(y, mask, dim)
        other = -2 if dim == -1 else -1
        per = (d * v).sum(dim=(1, other)) / v.sum(dim=(1, other)).clamp_min(1.0)  # (n, side - 1)
        valid = v.sum(dim=(1, other)) > 0
        typical = (per * valid).sum(1, keepdim=True) / valid.sum(1, keepdim=True).clamp_min(1)
        active = ((per > 0.1 * typical) & valid).sum(1).float()
        share = active / valid.sum(1).clamp_min(1).float()
        side = y.shape[dim]
        factors.append(side / (share * (side - 1) + 1.0))
    return (factors[0] * factors[1]).sqrt()


def _blur(y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.sum(dim=(1, 2, 3)).clamp_min(1.0)
    fine = (((y - gaussian_blur(y, FINE)) ** 2) * mask).sum(dim=(1, 2, 3)) / m
    coarse = (((y - gaussian_blur(y, COARSE)) ** 2) * mask).sum(dim=(1, 2, 3)) / m
    return torch.log(fine.clamp_min(1e-12) / coarse.clamp_min(1e-12))


def _jpeg(y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    at, off = torch.zeros(len(y)), torch.zeros(len(y))
    n_at, n_off = torch.zeros(len(y)), torch.zeros(len(y))
    for dim in (-1, -2):
        d, v = _steps(y, mask, dim)
        shape = [1, 1, 1, 1]
        shape[dim] = -1
        boundary = ((torch.arange(y.shape[dim] - 1) + 1) % BLOCK == 0).float().view(shape)
        at += (d * v * boundary).sum(dim=(1, 2, 3))
        n_at += (v * boundary).sum(dim=(1, 2, 3))
        off += (d * v * (1 - boundary)).sum(dim=(1, 2, 3))
        n_off += (v * (1 - boundary)).sum(dim=(1, 2, 3))
    ratio = (at / n_at.clamp_min(1.0)) / (off / n_off.clamp_min(1.0)).clamp_min(1e-6)
    return torch.log(ratio.clamp_min(1e-6))


def _noise(raw: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    C = raw.shape[1]
    r = F.conv2d(raw, _IMMERKAER.to(raw).expand(C, 1, 3, 3), padding=1, groups=C).abs().mean(1, keepdim=True)
    inner = (F.conv2d(mask, torch.ones(1, 1, 3, 3).to(raw), padding=1) >= 9 - 1e-3).float()  # whole 3×3 inside
    inner[..., 0, :] = inner[..., -1, :] = 0
    inner[..., :, 0] = inner[..., :, -1] = 0
    return math.sqrt(math.pi / 2) / 6.0 * (r * inner).sum(dim=(1, 2, 3)) / inner.sum(dim=(1, 2, 3)).clamp_min(1.0)


_MEASURES = {"resolution": _resolution, "blur": _blur, "jpeg": _jpeg, "noise": _noise}


def measure(how: str, raw: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """(n,) acquisition level of kind ``how`` of the [0, 1] images ``raw`` (n, C, H, W) over ``mask`` (n, 1, H, W).
    Higher is worse for resolution (factor), jpeg (log blockiness) and noise (sigma); lower for blur."""
    with torch.no_grad():
        x = raw.float() if how == "noise" else luma(raw.float())  # noise per channel, as it is added
        return _MEASURES[how](x, mask.float()).double().numpy()


def worse(how: str, donor: np.ndarray, sample: np.ndarray) -> np.ndarray:
    """Whether the donor's level is worse than the sample's by more than the measure's noise."""
    if how == "blur":
        return donor < sample - WORSE[how]
    if how == "resolution":
        return donor > sample * (1.0 + WORSE[how])
    if how == "noise":
        return donor > sample * (1.0 + WORSE[how]) + 1e-4
    return donor > sample + WORSE[how]


def blur_sigmas(H: int, W: int) -> np.ndarray:
    return np.geomspace(0.3, max(0.6, 0.08 * min(H, W)), 10)


def degrade(how: str, raw: torch.Tensor, param: torch.Tensor, generator: torch.Generator | None = None
            ) -> torch.Tensor:
    """``raw`` (n, C, H, W, [0, 1]) degraded per image by ``param`` (n,): the resolution factor, the blur sigma, the
    JPEG quality or the noise sigma; 0 leaves an image as it is."""
    out = raw.clone()
    p = param.detach().cpu().double().numpy()
    if how == "noise":
        z = torch.randn(raw.shape, generator=generator, dtype=torch.float32).to(raw.device, raw.dtype)
        return (raw + z * param.to(raw).view(-1, 1, 1, 1)).clamp(0.0, 1.0)
    for v in np.unique(p[p > 0]):
        idx = torch.from_numpy(np.flatnonzero(p == v)).to(raw.device)
        x = raw.index_select(0, idx)
        if how == "resolution":
            y = resolution_loss(x, float(v), "nearest")
        elif how == "blur":
            y = gaussian_blur(x, float(v))
        else:
            y = jpeg_compression(x, int(np.rint(v)))
        out[idx] = y.clamp(0.0, 1.0).to(out.dtype)
    return out


def grid(how: str, H: int, W: int) -> np.ndarray:
    """The parameters a blur or JPEG edit chooses among (resolution and noise are set from the levels directly)."""
    return blur_sigmas(H, W) if how == "blur" else np.array(JPEG_QUALITIES, dtype=np.float64)


def level_table(how: str, raw: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """(n, J): the level of each image after each parameter of ``grid`` applied inside ``mask``."""
    H, W = raw.shape[-2:]
    cols = []
    for v in grid(how, H, W):
        deg = degrade(how, raw, torch.full((len(raw),), float(v)))
        cols.append(measure(how, raw * (1 - mask) + deg * mask, mask))
    return np.stack(cols, axis=1)


def parameters(how: str, sample_level: np.ndarray, donor_level: np.ndarray, table: np.ndarray | None,
               H: int, W: int) -> np.ndarray:
    """Per sample, the degradation that gives it the donor's level (0 where the donor's is not worse). ``table``:
    ``level_table`` of the samples (blur, jpeg)."""
    out = np.zeros(len(sample_level))
    w = worse(how, donor_level, sample_level)
    if how == "resolution":
        out[w] = donor_level[w]
    elif how == "noise":
        out[w] = np.sqrt(np.maximum(donor_level[w] ** 2 - sample_level[w] ** 2, 0.0))
    elif w.any():
        assert table is not None
        j = np.abs(table[w] - donor_level[w, None]).argmin(1)
        out[w] = grid(how, H, W)[j]
    return out
