"""What a donor is matched on, so that a donor edit moves one suspected cue and nothing else.

A donor edit gives a sample something of another held-out image (its pixels in a region, its colour statistics,
its high-frequency spectrum). Donors of other groups can differ from the sample in more than the cue under test:
in a letterboxed data set the other group's images carry black bars, so their colour statistics are darker and
of higher contrast, and moving them onto a bar-free image is a brightness shift that no training image of that
kind holds. Each edit is therefore matched on the cue families it does *not* test:

- ``ring``: a fixed region swapped; donors whose pixels around the region look like the sample's (a corner cut
  from a letterboxed image goes into a letterboxed image);
- ``layout``: the image's coarse structure (luminance on an 8×8 grid, standardised per image: frames, bars,
  where the object sits; no brightness, contrast or colour);
- ``colour``: per-channel mean and spread of the coarse (8×8) image (no fine texture, noise or sharpness);
- ``acquisition``: the share of the luminance spectrum's energy above the edit's cutoff (sharpness, noise,
  compression; unchanged by brightness, contrast or tint).

``colour`` edits are matched on layout and acquisition, ``spectrum`` edits on layout and colour. Each feature is
standardised on the donor pool and each family weighs the same, whatever its number of features. A family-matched
donor must also be close enough (``tolerance``): no farther from the sample than the pool's images typically are
from their nearest neighbour of the same group. When a group's images differ from every other group's in what the
edit does not move (every 'disc' letterboxed, no other image), no donor qualifies and the edit cannot tell its cue
from the other one: those samples are left out and counted, never judged on a half-matched swap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import binary_dilation

from .._shortcuts import LUMA, high_band, unnormalised
from .regions import Region

GRID = 8
FAMILIES_OF_EDIT: dict[str, tuple[str, ...]] = {"colour": ("layout", "acquisition"),
                                                 "spectrum": ("layout", "colour")}


def _luma(raw: torch.Tensor) -> torch.Tensor:
    if raw.shape[1] == 3:
        return (raw * torch.tensor(LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)
    return raw.mean(1, keepdim=True)


def layout(raw: torch.Tensor) -> np.ndarray:
    """(n, 64): luminance pooled to an 8×8 grid, zero mean and unit spread per image."""
    g = F.adaptive_avg_pool2d(_luma(raw), GRID).flatten(1)
    g = g - g.mean(1, keepdim=True)
    return (g / g.std(1, keepdim=True).clamp_min(1e-6)).numpy()


def colour(raw: torch.Tensor) -> np.ndarray:
    """(n, 2C): per-channel mean and standard deviation of the image pooled to an 8×8 grid."""
    g = F.adaptive_avg_pool2d(raw, GRID).flatten(2)
    return torch.cat([g.mean(2), g.std(2)], dim=1).numpy()


def acquisition(raw: torch.Tensor, cutoff: float) -> np.ndarray:
    """(n, 1): log of the share of the luminance spectrum's energy (mean removed) above ``cutoff`` × Nyquist."""
    y = _luma(raw)[:, 0]
    y = y - y.mean(dim=(1, 2), keepdim=True)
    high = high_band(*y.shape[-2:], cutoff)
    e = torch.fft.rfft2(y).abs() ** 2
    share = (e * high).sum(dim=(1, 2)) / e.sum(dim=(1, 2)).clamp_min(1e-12)
    return torch.log(share.clamp_min(1e-8)).view(-1, 1).numpy()


@dataclass(frozen=True)
class Matcher:
    """Describes images for one region and edit; ``describe`` gives rows comparable by Euclidean distance."""

    ring: np.ndarray | None  # (H, W) bool: the pixels around a fixed region (ring matching)
    families: tuple[str, ...]
    norm: tuple[Sequence[float], Sequence[float]]
    cutoff: float
    centre: np.ndarray | None = None
    scale: np.ndarray | None = None

    def _features(self, x: torch.Tensor) -> np.ndarray:
        if self.ring is not None:
            return x.numpy()[:, :, self.ring].reshape(len(x), -1)
        raw = unnormalised(x.float().cpu(), self.norm)[0]
        feats = {"layout": lambda: layout(raw), "colour": lambda: colour(raw),
                 "acquisition": lambda: acquisition(raw, self.cutoff)}
        parts = [f / np.sqrt(f.shape[1]) for f in (feats[fam]() for fam in self.families)]  # families weigh the same
        return np.concatenate(parts, axis=1)

    def describe(self, x: torch.Tensor) -> np.ndarray:
        f = self._features(x)
        if self.centre is None or self.scale is None:
            return f
        return (f - self.centre) / self.scale

    def fitted(self, donors: torch.Tensor) -> tuple[Matcher, np.ndarray]:
        """This matcher standardised on the donor pool's images, and the donors' descriptions."""
        f = self._features(donors)
        if self.ring is not None:
            return self, f
        centre, scale = f.mean(0), f.std(0)
        scale = np.where(scale > 1e-8, scale, 1.0)
        m = Matcher(self.ring, self.families, self.norm, self.cutoff, centre, scale)
        return m, (f - centre) / scale


def tolerance(desc: np.ndarray, member_of: np.ndarray, quantile: float, budget_values: int = 1 << 24) -> float:
    """The ``quantile`` of the donors' distances to their nearest other donor sharing a group (``member_of``:
    (m, G) bool); infinite when no donor has such a neighbour. Rows in chunks: memory stays near
    ``budget_values`` floats however many donors a many-class pool holds."""
    m = len(desc)
    nearest = np.full(m, np.inf)
    step = max(1, budget_values // max(1, m * max(1, desc.shape[1])))
    for s in range(0, m, step):
        d2 = ((desc[s:s + step, None, :] - desc[None, :, :]) ** 2).sum(-1)
        d2[np.arange(len(d2)), np.arange(s, s + len(d2))] = np.inf  # not its own neighbour
        share = (member_of[s:s + step, None, :] & member_of[None, :, :]).any(-1)
        nearest[s:s + step] = np.where(share, d2, np.inf).min(1)
    nearest = nearest[np.isfinite(nearest)]
    return float(np.sqrt(np.quantile(nearest, quantile))) if len(nearest) else float("inf")


def matcher_for(reg: Region, how: str, width: int, norm: tuple[Sequence[float], Sequence[float]],
                cutoff: float) -> Matcher | None:
    """The matcher of a region and edit: a ring around a fixed region that leaves one, else the families the
    edit does not move; None when nothing is matched (a per-sample region swapped whole)."""
    if how == "swap":
        if reg.per_sample or reg.mask.all() or width < 1:
            return None
        ring = binary_dilation(reg.mask, iterations=width) & ~reg.mask
        return Matcher(ring, (), norm, cutoff) if ring.any() else None
    fams = FAMILIES_OF_EDIT.get(how)
    return Matcher(None, fams, norm, cutoff) if fams else None
