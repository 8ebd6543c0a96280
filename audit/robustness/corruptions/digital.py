"""Digital corruptions of ImageNet-C (Hendrycks & Dietterich 2019), definitions and parameters as
``imagecorruptions`` 1.1.2 (Apache-2.0) gives them; own batched code.

- brightness: V + c in HSV (clipped at 1), hue and saturation kept; on RGB this is x * V' / V (a black pixel
  becomes grey V'); on grey images x + c
- contrast: (x - m) c + m, m the per-image, per-channel mean
- saturate: S c1 + c2 in HSV (clipped to [0, 1]); pure grey pixels (hue 0 there) gain a red tint when c2 > 0, as
  in the reference; grey images come back unchanged (the reference keeps the red channel, which is V)
- pixelate: Pillow's BOX downscale to int(side * c), then NEAREST back up (float arithmetic; Pillow rounds to 8
  bits after each axis, which the tests allow for)
- jpeg_compression: a real JPEG encode / decode per image with Pillow at quality c (grey via RGB and back, as
  the reference does); images are quantised to 8 bits first, since JPEG codes 8-bit samples
"""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ._base import Corruption

SOURCE = "Hendrycks & Dietterich (2019), ImageNet-C; definitions and parameters of imagecorruptions 1.1.2"


def brightness(x: Tensor, c: float, g: torch.Generator | None = None) -> Tensor:
    if x.shape[1] == 1:
        return x + c
    v = x.amax(1, keepdim=True)
    v_new = (v + c).clamp(max=1.0)
    ratio = torch.where(v > 0, v_new / v.clamp(min=1e-12), torch.zeros_like(v))
    return torch.where(v > 0, x * ratio, v_new.expand_as(x))


def contrast(x: Tensor, c: float, g: torch.Generator | None = None) -> Tensor:
    m = x.mean((2, 3), keepdim=True)
    return (x - m) * c + m


def saturate(x: Tensor, c: tuple[float, float], g: torch.Generator | None = None) -> Tensor:
    if x.shape[1] == 1:
        return x.clone()
    v = x.amax(1, keepdim=True)
    mn = x.amin(1, keepdim=True)
    span = v - mn
    s = torch.where(v > 0, span / v.clamp(min=1e-12), torch.zeros_like(v))
    s_new = (s * c[0] + c[1]).clamp(0.0, 1.0)
    # channel = V (1 - S g), g in [0, 1] fixed by hue: so channel' = V - (V - channel) S' / S
    coloured = v - (v - x) / span.clamp(min=1e-12) * v * s_new
    grey_pixel = torch.cat([v, v * (1 - s_new), v * (1 - s_new)], 1)  # hue 0: (V, V(1-S'), V(1-S'))
    return torch.where(s > 0, coloured, grey_pixel)


@lru_cache(maxsize=64)
def box_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights of Pillow's BOX resampling (support 0.5 x scale, centre (i + 0.5) scale)."""
    scale = n_in / n_out
    fscale = max(scale, 1.0)
    support = 0.5 * fscale
    m = np.zeros((n_out, n_in))
    for i in range(n_out):
        centre = (i + 0.5) * scale
        lo = max(int(centre - support + 0.5), 0)
        hi = min(int(centre + support + 0.5), n_in)
        t = (np.arange(lo, hi) - centre + 0.5) / fscale
        w = ((t > -0.5) & (t <= 0.5)).astype(np.float64)
        m[i, lo:hi] = w / w.sum()
    return m


@lru_cache(maxsize=64)
def nearest_index(n_in: int, n_out: int) -> np.ndarray:
    """Pillow's NEAREST source index of each output position: int((i + 0.5) * n_in / n_out), the position
    accumulated step by step in float64 as Pillow's affine transform does (it decides exact ties)."""
    step = n_in / n_out
    pos = np.add.accumulate(np.concatenate([[0.5 * step], np.full(n_out - 1, step)]))
    return np.minimum(pos.astype(np.int64), n_in - 1)


def banded(x: Tensor, m: np.ndarray, dim: int) -> Tensor:
    """x resampled along ``dim`` by a banded (n_out, n_in) matrix: one gather-and-add per band offset."""
    nz = m != 0
    lo = nz.argmax(1)
    width = int((m.shape[1] - nz[:, ::-1].argmax(1) - lo).max())
    out = None
    for t in range(width):
        idx = np.minimum(lo + t, m.shape[1] - 1)
        wt = np.where(lo + t < m.shape[1], m[np.arange(len(m)), idx], 0.0)
        shape = [1] * x.ndim
        shape[dim] = -1
        term = x.index_select(dim, torch.from_numpy(idx).to(x.device)) * torch.from_numpy(wt).to(x).view(shape)
        out = term if out is None else out.add_(term)
    return out


def pixelate(x: Tensor, c: float, g: torch.Generator | None = None) -> Tensor:
    h, w = x.shape[-2:]
    sh, sw = max(int(h * c), 1), max(int(w * c), 1)
    small = banded(banded(x, box_matrix(h, sh), -2), box_matrix(w, sw), -1)
    ih = torch.from_numpy(nearest_index(sh, h)).to(x.device)
    iw = torch.from_numpy(nearest_index(sw, w)).to(x.device)
    return small.index_select(-2, ih).index_select(-1, iw)


def to_uint8(x: Tensor) -> np.ndarray:
    """(B, H, W, C) uint8 of a [0, 1] batch, rounded to the nearest level."""
    return (x.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def jpeg_compression(x: Tensor, quality: int, g: torch.Generator | None = None) -> Tensor:
    arr = to_uint8(x)
    out = np.empty_like(arr)
    for i, a in enumerate(arr):
        img = Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a)
        grey_in = img.mode != "RGB"
        buf = io.BytesIO()
        img.convert("RGB").save(buf, "JPEG", quality=int(quality))
        buf.seek(0)
        with Image.open(buf) as dec:
            dec = dec.convert("L") if grey_in else dec.convert("RGB")
            d = np.asarray(dec)
        out[i] = d[..., None] if d.ndim == 2 else d
    return torch.from_numpy(out).to(x.device).permute(0, 3, 1, 2).to(x.dtype) / 255.0


CORRUPTIONS = (
    Corruption("brightness", "digital", brightness, (0.1, 0.2, 0.3, 0.4, 0.5), False, SOURCE, colour=True),
    Corruption("contrast", "digital", contrast, (0.4, 0.3, 0.2, 0.1, 0.05), False, SOURCE),
    Corruption("saturate", "digital", saturate, ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)), False, SOURCE,
               colour=True, note="grey images are returned unchanged, as by the reference"),
    Corruption("pixelate", "digital", pixelate, (0.6, 0.5, 0.4, 0.3, 0.25), False, SOURCE),
    Corruption("jpeg_compression", "digital", jpeg_compression, (25, 18, 15, 10, 7), False, SOURCE, colour=True,
               note="Pillow JPEG encode/decode per image (8-bit)"),
)
