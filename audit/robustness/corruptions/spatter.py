"""Spatter of Hendrycks & Dietterich (2019), as ``imagecorruptions`` 1.1.2 (Apache-2.0) defines it; own batched
code with OpenCV's operations rewritten as tensor operations.

A liquid layer L = Gaussian(N(c1, c2^2), sigma c3) with values below c4 set to 0.
- Water (severities 1-3): edges of the 8-bit layer (Canny, thresholds 50 / 150, 3 x 3 Sobel, L1 magnitude,
  hysteresis), the 5 x 5 chamfer distance to them (weights 1, 1.4, 2.1969, as OpenCV's DIST_L2 mask 5) capped
  at 20, 3 x 3 box blur, histogram equalisation, the emboss kernel [[-2,-1,0],[-1,1,1],[0,1,2]] (8-bit
  saturation), 3 x 3 box blur; m = c5 (L d) / max(L d); the image gains m times pale turquoise (175, 238, 238).
- Mud (severities 4-5): m = Gaussian(L > c4, sigma c5), values below 0.8 set to 0; x (1 - m) + m brown
  (63, 42, 20).
Grey images add the colour's luma. The Canny stage follows OpenCV's rules (direction sectors by tan 22.5 deg,
ties broken as OpenCV breaks them) but borders may differ by a pixel; spatter is random, so the tests compare
statistics.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import Tensor

from ._base import Corruption
from ._ops import LUMA_IC, correlate2d, gaussian_filter, normal

SOURCE = "Hendrycks & Dietterich (2019), ImageNet-C extra corruptions; definition of imagecorruptions 1.1.2"
WATER = (175 / 255, 238 / 255, 238 / 255)
MUD = (63 / 255, 42 / 255, 20 / 255)
EMBOSS = torch.tensor([[-2.0, -1.0, 0.0], [-1.0, 1.0, 1.0], [0.0, 1.0, 2.0]])
_TAN22 = 0.41421356237  # tan(22.5 deg)


def _shift(t: Tensor, dy: int, dx: int, fill: float) -> Tensor:
    """t[y + dy, x + dx] (fill outside), for (B, 1, H, W)."""
    h, w = t.shape[-2:]
    p = F.pad(t, (1, 1, 1, 1), value=fill) if max(abs(dy), abs(dx)) <= 1 else F.pad(t, (2, 2, 2, 2), value=fill)
    r = (p.shape[-1] - w) // 2
    return p[..., r + dy:r + dy + h, r + dx:r + dx + w]


def canny(img: Tensor, low: float = 50.0, high: float = 150.0) -> Tensor:
    """Boolean edge map of an 8-bit-valued (B, 1, H, W) float image (values 0..255)."""
    sx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
    gx = correlate2d(img, sx, "edge")
    gy = correlate2d(img, sx.T, "edge")
    mag = gx.abs() + gy.abs()
    ax, ay = gx.abs(), gy.abs()
    horizontal = ay < ax * _TAN22
    vertical = ay > ax * (_TAN22 + 2.0)
    diag_sign = torch.where((gx * gy) < 0, -1, 1)
    left, right = _shift(mag, 0, -1, 0.0), _shift(mag, 0, 1, 0.0)
    up, down = _shift(mag, -1, 0, 0.0), _shift(mag, 1, 0, 0.0)
    ul, dr = _shift(mag, -1, -1, 0.0), _shift(mag, 1, 1, 0.0)
    ur, dl = _shift(mag, -1, 1, 0.0), _shift(mag, 1, -1, 0.0)
    keep_h = (mag > left) & (mag >= right)
    keep_v = (mag > up) & (mag >= down)
    keep_d = torch.where(diag_sign < 0, (mag > ur) & (mag > dl), (mag > ul) & (mag > dr))
    peak = torch.where(horizontal, keep_h, torch.where(vertical, keep_v, keep_d)) & (mag > low)
    return hysteresis(peak, peak & (mag > high))


def hysteresis(candidates: Tensor, strong: Tensor) -> Tensor:
    """Candidate pixels 8-connected to a strong one (connected components on the CPU, per image)."""
    cand, seed = candidates.cpu().numpy(), strong.cpu().numpy()
    out = np.zeros_like(cand)
    for b in range(len(cand)):
        labels, n = ndimage.label(cand[b, 0], structure=np.ones((3, 3)))
        keep = np.zeros(n + 1, dtype=bool)
        keep[labels[seed[b, 0]]] = True
        keep[0] = False
        out[b, 0] = keep[labels]
    return torch.from_numpy(out).to(candidates.device)


def chamfer_distance(zero: Tensor, cap: float = 20.0) -> Tensor:
    """5 x 5 chamfer distance (1, 1.4, 2.1969) to the nearest True pixel of (B, 1, H, W), capped at ``cap``."""
    h, w = zero.shape[-2:]
    d = torch.where(zero, 0.0, cap + 1.0).float()
    moves = [(dy, dx, 1.0) for dy, dx in ((0, 1), (1, 0), (0, -1), (-1, 0))]
    moves += [(dy, dx, 1.4) for dy in (-1, 1) for dx in (-1, 1)]
    moves += [(dy, dx, 2.1969) for dy, dx in ((1, 2), (2, 1), (-1, 2), (-2, 1), (1, -2), (2, -1), (-1, -2), (-2, -1))]
    for _ in range(int(cap) + 1):
        p = F.pad(d, (2, 2, 2, 2), value=cap + 1.0)
        new = d.clone()
        for dy, dx, wgt in moves:
            torch.minimum(new, p[..., 2 + dy:2 + dy + h, 2 + dx:2 + dx + w] + wgt, out=new)
        if torch.equal(new, d):
            break
        d = new
    return d.clamp(max=cap)


def box3(t: Tensor) -> Tensor:
    return correlate2d(t, torch.full((3, 3), 1.0 / 9.0), "reflect101")


def equalise(t: Tensor) -> Tensor:
    """OpenCV's equalizeHist of 8-bit values (B, 1, H, W), per image."""
    b = t.shape[0]
    v = t.reshape(b, -1).long()
    hist = torch.zeros(b, 256, device=t.device).scatter_add_(1, v, torch.ones_like(v, dtype=torch.float32))
    total = v.shape[1]
    first = (hist > 0).float().argmax(1, keepdim=True)
    h0 = hist.gather(1, first)
    cdf = hist.cumsum(1) - h0
    lut = torch.round(cdf * 255.0 / (total - h0).clamp(min=1)).clamp(0, 255)
    lut = torch.where(h0 == total, first.float().expand_as(lut), lut)
    return lut.gather(1, v).reshape(t.shape)


def _colour(m: Tensor, colour: tuple[float, float, float], channels: int) -> Tensor:
    c = torch.tensor(colour, device=m.device, dtype=m.dtype).view(1, 3, 1, 1)
    layer = m * c
    if channels == 1:
        w = torch.tensor(LUMA_IC, device=m.device, dtype=m.dtype).view(1, 3, 1, 1)
        return (layer.clamp(0, 1) * w).sum(1, keepdim=True)
    return layer


def spatter(x: Tensor, c: tuple[float, ...], g: torch.Generator) -> Tensor:
    b, _, h, w = x.shape
    return spatter_at(x, c, normal((b, 1, h, w), g, x, c[0], c[1]))


def spatter_at(x: Tensor, c: tuple[float, ...], noise: Tensor) -> Tensor:
    """Spatter from a given N(c1, c2^2) layer (B, 1, H, W) (the deterministic part of ``spatter``)."""
    _, _, sigma, thresh, strength, mud = c
    ch = x.shape[1]
    liquid = gaussian_filter(noise.to(x), sigma, "edge")
    liquid = torch.where(liquid < thresh, torch.zeros_like(liquid), liquid)
    if not mud:
        lq = torch.floor(liquid * 255).remainder(256)  # the reference's astype(np.uint8)
        dist = chamfer_distance(canny(lq))
        dist = torch.floor(box3(dist.double())).to(x.dtype)  # float64 sums floor as OpenCV's do
        dist = equalise(dist)
        dist = correlate2d(dist, EMBOSS, "reflect101").round().clamp(0, 255)
        dist = box3(dist).round()  # an 8-bit blur rounds
        m = lq * dist
        top = m.amax((2, 3), keepdim=True)
        m = torch.where(top > 0, m / top.clamp(min=1e-12), torch.zeros_like(m)) * strength
        return x + _colour(m, WATER, ch)
    m = gaussian_filter((liquid > thresh).to(x.dtype), strength, "edge")
    m = torch.where(m < 0.8, torch.zeros_like(m), m)
    return x * (1 - m) + _colour(m, MUD, ch)


CORRUPTIONS = (
    Corruption("spatter", "weather", spatter, (
        (0.65, 0.3, 4, 0.69, 0.6, 0), (0.65, 0.3, 3, 0.68, 0.6, 0), (0.65, 0.3, 2, 0.68, 0.5, 0),
        (0.65, 0.3, 1, 0.65, 1.5, 1), (0.67, 0.4, 1, 0.65, 1.5, 1)), True, SOURCE, colour=True),
)
