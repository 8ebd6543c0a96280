"""Shared helpers of the shortcut rules (ROI, regions, discovery, sanity, faithfulness).

Not a rule kind: small pure functions on attribution maps, plus the few tensor operations (blur,
region fill) that the counterfactual rules run on the probe's device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import binary_dilation

from ..engine.probe import ModelProbe
from ..errors import AuditError
from ..maps.stats import map_problem, positive_part, share_inside  # noqa: F401 - re-exported for the rules
from .evidence import Evidence

MAX_EVIDENCE_IDS = 12


def require_probe(evidence: Evidence) -> ModelProbe:
    if evidence.probe is None:
        raise AuditError("this rule needs the model (no model probe in the evidence)")
    return evidence.probe


def explainer_title(probe: ModelProbe, name: str) -> str:
    try:
        return str(type(probe.explainer(name)).title)
    except Exception:  # noqa: BLE001 - a title is cosmetic
        return name


def rnd(x: Any, digits: int | None = None) -> float | None:
    """A JSON-safe float (None for missing / NaN / inf), rounded only when ``digits`` is given: results.json keeps
    6 significant digits of every float, so details stay comparable with tolerances of the float arithmetic (a
    value rounded to 4 decimals turns a 1e-7 difference into 1e-4 where it crosses a rounding boundary)."""
    if x is None:
        return None
    f = float(x)
    if not math.isfinite(f):
        return None
    return f if digits is None else round(f, digits)


def nested(a: np.ndarray, digits: int = 3) -> list:
    """A small array as nested lists of rounded floats (JSON-safe)."""
    return np.round(np.nan_to_num(np.asarray(a, dtype=np.float64), nan=0.0), digits).tolist()


def pct(x: float) -> str:
    return f"{100.0 * x:.0f} %"


def class_groups(evidence: Evidence, ids: Sequence[str], group_by: str) -> np.ndarray:
    """Class index of each id: its true class (``group_by='true'``) or its predicted class."""
    rows = evidence.predictions.index_of(list(ids))
    if group_by == "true":
        return evidence.predictions.labels[rows]
    return evidence.predictions.preds[rows]


def scope_words(scope: str) -> str:
    return {"correct": "correctly classified", "incorrect": "misclassified", "picks": "picked",
            "all": "held-out"}.get(scope, scope)


# ---- tensor helpers (run on the probe's device) --------------------------------------------------

def gaussian_kernel1d(sigma: float, device: torch.device) -> torch.Tensor:
    radius = max(1, math.ceil(3.0 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32, device=device)
    k = torch.exp(-0.5 * (t / max(sigma, 1e-6)) ** 2)
    return k / k.sum()


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (B, C, H, W) with replicate padding (any image size, any sigma)."""
    if sigma <= 0:
        return x
    k = gaussian_kernel1d(sigma, x.device).to(x.dtype)
    r = (len(k) - 1) // 2
    C = x.shape[1]
    y = F.pad(x, (r, r, 0, 0), mode="replicate")
    y = F.conv2d(y, k.view(1, 1, 1, -1).expand(C, 1, 1, -1), groups=C)
    y = F.pad(y, (0, 0, r, r), mode="replicate")
    return F.conv2d(y, k.view(1, 1, -1, 1).expand(C, 1, -1, 1), groups=C)


LUMA = (0.299, 0.587, 0.114)


def greyscale(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Colour removed: the luminance of the un-normalised RGB image in every channel, normalised again."""
    m = torch.tensor(list(mean), dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(list(std), dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    raw = x * s + m
    w = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    y = (raw * w).sum(dim=1, keepdim=True)
    return (y - m) / s


def fill_region(x: torch.Tensor, mask: torch.Tensor, how: str, sigma: float = 2.0,
                generator: torch.Generator | None = None,
                norm: tuple[Sequence[float], Sequence[float]] | None = None) -> torch.Tensor:
    """Replace the pixels of ``mask`` (H, W bool) in every image of x (B, C, H, W).

    ``mean``: each image's per-channel mean outside the region (the whole image's mean when the region
    covers it); ``blur``: a Gaussian blur of the image (sigma in pixels); ``noise``: Gaussian noise with each
    image's per-channel mean and std outside the region (seeded through ``generator``); ``greyscale``: the
    region's colour removed (luminance kept; needs 3 channels and the preprocessing ``norm`` = (mean, std)).
    """
    m = mask.to(x.device, dtype=x.dtype)
    if m.dim() == 2:  # one (H, W) mask for every image, else (B, 1, H, W)
        m = m[None, None]
    keep = 1.0 - m
    if how == "blur":
        fill = gaussian_blur(x, sigma)
    elif how == "greyscale":
        if x.shape[1] != 3:
            raise ValueError("replace = 'greyscale' needs 3-channel (RGB) model inputs")
        fill = greyscale(x, *(norm or ((0.0,) * 3, (1.0,) * 3)))
    elif how in ("mean", "noise"):
        has_rest = (keep.flatten(1).sum(1) > 0).view(-1, 1, 1, 1)
        ref = torch.where(has_rest, keep, torch.ones_like(keep))  # statistics of the rest of each image
        n_ref = ref.sum(dim=(2, 3), keepdim=True).clamp_min(1.0)
        mean = (x * ref).sum(dim=(2, 3), keepdim=True) / n_ref
        if how == "mean":
            fill = mean.expand_as(x)
        else:
            var = (((x - mean) * ref) ** 2).sum(dim=(2, 3), keepdim=True) / n_ref
            z = torch.randn(x.shape, generator=generator, dtype=torch.float32).to(x.device, x.dtype)
            fill = mean + var.sqrt() * z
    else:
        raise ValueError(f"replace must be 'mean', 'blur', 'noise' or 'greyscale'; got {how!r}")
    return x * keep + fill * m


def unnormalised(x: torch.Tensor, norm: tuple[Sequence[float], Sequence[float]]) -> tuple[torch.Tensor, torch.Tensor,
                                                                                  torch.Tensor]:
    C = x.shape[1]
    m = torch.tensor(list(norm[0]), dtype=x.dtype, device=x.device).view(1, -1, 1, 1).expand(1, C, 1, 1)
    s = torch.tensor(list(norm[1]), dtype=x.dtype, device=x.device).view(1, -1, 1, 1).expand(1, C, 1, 1)
    return x * s + m, m, s


def masked_stats(r: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image and channel, the mean and standard deviation of ``r`` over ``mask`` (B, 1, H, W)."""
    n = mask.sum(dim=(2, 3), keepdim=True).clamp_min(1.0)
    mu = (r * mask).sum(dim=(2, 3), keepdim=True) / n
    sd = ((((r - mu) * mask) ** 2).sum(dim=(2, 3), keepdim=True) / n).sqrt()
    return mu, sd


def colour_transfer(x: torch.Tensor, donor: torch.Tensor, mask: torch.Tensor,
                    norm: tuple[Sequence[float], Sequence[float]],
                    donor_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Colour statistics of ``donor`` given to ``x`` inside ``mask`` (B, 1, H, W): per channel, the region's mean
    and standard deviation become the donor region's (Reinhard et al. 2001, in the un-normalised intensities,
    clipped to [0, 1]). Brightness, contrast and a colour cast travel; shapes and edges stay. ``donor_mask``: where
    the donor's statistics are read (its own background, say), when it differs from ``mask``."""
    rx, m0, s0 = unnormalised(x, norm)
    rd = donor * s0 + m0
    mx, sx = masked_stats(rx, mask)
    md, sd = masked_stats(rd, mask if donor_mask is None else donor_mask)
    y = ((rx - mx) / sx.clamp_min(1e-4) * sd + md).clamp(0.0, 1.0)
    out = rx * (1.0 - mask) + y * mask
    return (out - m0) / s0


def grown(roi: np.ndarray | None, px: int) -> np.ndarray | None:
    """A ROI mask grown by ``px`` pixels (4-connected dilation steps), or None."""
    if roi is None:
        return None
    return binary_dilation(roi, iterations=px) if px > 0 else roi


def high_band(H: int, W: int, cutoff: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """(H, W // 2 + 1) bool over ``rfft2`` frequencies: radial frequency above ``cutoff`` × Nyquist."""
    fy = torch.fft.fftfreq(H, device=device).abs().view(-1, 1) / 0.5
    fx = torch.fft.rfftfreq(W, device=device).view(1, -1) / 0.5
    return (fy**2 + fx**2).sqrt() > cutoff


def region_filled(r: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``r`` with everything off ``mask`` (B, 1, H, W) set to the region's mean: its spectrum is the region's
    texture, not the edges of what lies outside it (an image without region pixels is kept as it is)."""
    if bool((mask > 0.5).all()):
        return r
    mu, _ = masked_stats(r, mask)
    empty = (mask.flatten(1).sum(1) == 0).view(-1, 1, 1, 1)
    return torch.where(empty, r, r * mask + mu * (1.0 - mask))


def spectrum_transfer(x: torch.Tensor, donor: torch.Tensor, mask: torch.Tensor, cutoff: float,
                      norm: tuple[Sequence[float], Sequence[float]],
                      donor_mask: torch.Tensor | None = None) -> torch.Tensor:
    """The donor's radial power spectrum above ``cutoff`` (a fraction of the Nyquist frequency) given to ``x``,
    per channel: each of ``x``'s high-frequency coefficients is scaled so that every ring of radial frequency
    holds the donor's mean power (a radially averaged Fourier domain adaptation, after Yang & Soatto 2020).
    Sharpness, noise and compression (how much fine detail there is at each scale) travel; the positions of
    edges (the phase), the picture (low frequencies) and the orientation of the fine detail stay the sample's,
    so the amplitude pattern of a square's straight edges never moves onto a disc. A ring where ``x`` holds no
    energy at all stays empty. Blended into ``x`` by ``mask``, clipped to [0, 1]. With a region smaller than the
    image, both spectra are those of the region alone (``region_filled``; the donor's over ``donor_mask`` when
    given), so the object's edges neither count as the background's texture nor travel with it."""
    rx, m0, s0 = unnormalised(x, norm)
    rd = region_filled(donor * s0 + m0, mask if donor_mask is None else donor_mask)
    rx_region = region_filled(rx, mask)
    H, W = x.shape[-2:]
    ring = radial_bins(H, W, x.device)
    n_ring = int(ring.max()) + 1
    high = high_band(H, W, cutoff, x.device).flatten()
    X = torch.fft.rfft2(rx_region.float())
    D = torch.fft.rfft2(rd.float())
    ring_f = ring.flatten()
    # an rfft2 column other than 0 (and W/2 for even W) stands for two coefficients of the full spectrum
    twice = torch.full((W // 2 + 1,), 2.0, device=x.device)
    twice[0] = 1.0
    if W % 2 == 0:
        twice[-1] = 1.0
    weight = twice.view(1, -1).expand(H, -1).flatten()
    count = torch.zeros(n_ring, device=x.device).index_add_(0, ring_f, weight)

    def ring_power(F_: torch.Tensor) -> torch.Tensor:
        p = F_.abs().flatten(2) ** 2 * weight
        return torch.zeros(*p.shape[:2], n_ring, device=x.device).index_add_(2, ring_f, p) / count.clamp_min(1.0)

    gain = (ring_power(D) / ring_power(X).clamp_min(1e-12)).sqrt()[:, :, ring_f]
    gain = torch.where(high.view(1, 1, -1), gain, torch.ones_like(gain)).view(X.shape)
    y = torch.fft.irfft2(X * gain, s=(H, W)).to(x.dtype).clamp(0.0, 1.0)
    out = rx * (1.0 - mask) + y * mask
    return (out - m0) / s0


def radial_bins(H: int, W: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(H, W // 2 + 1) long over ``rfft2`` frequencies: the ring of radial frequency, one frequency step wide."""
    fy = torch.fft.fftfreq(H, device=device).abs().view(-1, 1) / 0.5
    fx = torch.fft.rfftfreq(W, device=device).view(1, -1) / 0.5
    return ((fy**2 + fx**2).sqrt() * (max(H, W) // 2)).round().long()


def chunk_rows(n_rows: int, per_row_values: int, budget_values: int = 1 << 25) -> int:
    """How many rows fit in one chunk when each row needs ``per_row_values`` floats."""
    return max(1, budget_values // max(1, per_row_values))
