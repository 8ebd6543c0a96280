"""Counterfactual edits of an image region, batched: many (sample, donor, region) edits scored in one pass.

Donor edits (``swap``: the region's pixels, ``colour``: its colour statistics, ``spectrum``: its high-frequency
amplitudes) take the region from another held-out image; level edits (``level``: an acquisition level, see
``levels``) degrade the sample to a donor's level; occlusions (``mean``, ``blur``, ``noise``, ``greyscale``) replace
the region from the image itself. A ``Request`` is one list of edits of one kind; ``score_requests`` packs the edits
of many requests (every cell of a look) as channels of one tensor per chunk, so every model pass goes through
``probe.map_over_perturbations`` and the perturbation runs on the probe's device.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ...engine.probe import ModelProbe
from .._shortcuts import colour_transfer, fill_region, spectrum_transfer, unnormalised
from .levels import degrade
from .regions import Region
from .swap import DonorPool, ImageSource

DONOR_MODES = ("swap", "colour", "spectrum")


@dataclass(frozen=True)
class Edit:
    """How a region is replaced: ``how`` (swap, colour, spectrum, level, mean, blur, noise, greyscale), the
    acquisition ``level`` kind of a level edit, and the settings."""

    how: str
    norm: tuple[Sequence[float], Sequence[float]]
    sigma: float = 2.0
    cutoff: float = 0.5
    margin_px: int = 0
    level: str = ""

    @property
    def uses_donor(self) -> bool:
        return self.how in DONOR_MODES

    @property
    def name(self) -> str:
        return self.level or self.how


@dataclass(frozen=True)
class Request:
    """Edited images of one kind: the rows of the image source, the donor of each (pool index) or the level
    parameter of each, for one region."""

    edit: Edit
    region: Region
    rows: np.ndarray
    donors: np.ndarray | None = None
    params: np.ndarray | None = None


@dataclass(frozen=True)
class Masks:
    """ROI masks (grown by the rule's margin) of the samples and the donors, stacked."""

    samples: np.ndarray  # (n, H, W) bool
    donors: np.ndarray | None  # (m, H, W) bool


def region_masks(reg: Region, masks: Masks, rows: np.ndarray, donors: np.ndarray | None, edit: Edit
                 ) -> tuple[np.ndarray, np.ndarray | None]:
    """(k, H, W) float masks where the sample is edited and, for statistic edits, where the donor's statistics
    are read (None: the same). A swapped background keeps pixels off both ROIs (the donor's object must not come
    along); a colour, spectrum or level edit acts on the sample's whole region and reads the donor's own."""
    if not reg.per_sample:
        return np.broadcast_to(reg.mask, (len(rows), *reg.mask.shape)).astype(np.float32), None
    s = masks.samples[rows]
    s = s if reg.inside else ~s
    d = None
    if donors is not None and masks.donors is not None:
        d = masks.donors[donors]
        d = d if reg.inside else ~d
        if edit.how == "swap":
            return (s & d).astype(np.float32), None
    return s.astype(np.float32), None if d is None else d.astype(np.float32)


def _perturb(edit: Edit, C: int, fixed: torch.Tensor | None, two: bool, generator: torch.Generator | None):
    """The perturbation of one packed batch: [x, donor or parameter plane, sample mask (unless fixed), donor mask]."""

    def run(b: torch.Tensor) -> torch.Tensor:
        x = b[:, :C]
        if edit.how in ("mean", "blur", "noise", "greyscale"):
            m = fixed.to(b.device) if fixed is not None else b[:, C:C + 1] > 0.5
            return fill_region(x, m, edit.how, edit.sigma, generator, edit.norm)
        extra = b[:, C:2 * C] if edit.uses_donor else b[:, C:C + 1]
        at = 2 * C if edit.uses_donor else C + 1
        m = fixed.to(b.device, b.dtype).expand(len(b), 1, *fixed.shape[-2:]) if fixed is not None else b[:, at:at + 1]
        md = b[:, at + 1:at + 2] if two else None
        if edit.how == "swap":
            return torch.where(m > 0.5, extra, x)
        if edit.how == "colour":
            return colour_transfer(x, extra, m, edit.norm, md)
        if edit.how == "spectrum":
            return spectrum_transfer(x, extra, m, edit.cutoff, edit.norm, md)
        raw, m0, s0 = unnormalised(x, edit.norm)
        deg = degrade(edit.level, raw, extra[:, 0, 0, 0], generator)
        return (raw * (1 - m) + deg * m - m0) / s0

    return run


def score_requests(probe: ModelProbe, src: ImageSource, pool: DonorPool | None, masks: Masks,
                   requests: Sequence[Request], generator: torch.Generator | None = None) -> list[np.ndarray]:
    """Task scores (len(rows), K) of every request's edited images. Requests of one edit and region share
    chunks, so a look over every group and direction of a region costs one model call per chunk."""
    out: list[np.ndarray] = [np.zeros((0, len(probe.task.classes)))] * len(requests)
    groups: dict[tuple, list[int]] = {}
    for i, r in enumerate(requests):
        if len(r.rows):
            groups.setdefault((r.edit, r.region.key), []).append(i)
    for idx in groups.values():
        edit, reg = requests[idx[0]].edit, requests[idx[0]].region
        rows = np.concatenate([requests[i].rows for i in idx]).astype(np.int64)
        donors = (np.concatenate([requests[i].donors for i in idx]).astype(np.int64)  # type: ignore[misc]
                  if edit.uses_donor else None)
        params = (np.concatenate([requests[i].params for i in idx]).astype(np.float32)  # type: ignore[misc]
                  if edit.how == "level" else None)
        scores = np.concatenate([
            _score_chunk(probe, src, pool, masks, edit, reg, rows[s:s + src.chunk],
                         None if donors is None else donors[s:s + src.chunk],
                         None if params is None else params[s:s + src.chunk], generator)
            for s in range(0, len(rows), src.chunk)])
        ends = np.cumsum([len(requests[i].rows) for i in idx])
        for i, part in zip(idx, np.split(scores, ends[:-1]), strict=True):
            out[i] = part
    return out


def _score_chunk(probe: ModelProbe, src: ImageSource, pool: DonorPool | None, masks: Masks, edit: Edit,
                 reg: Region, rows: np.ndarray, donors: np.ndarray | None, params: np.ndarray | None,
                 generator: torch.Generator | None) -> np.ndarray:
    x = src.get(rows)
    C, H, W = x.shape[1:]
    parts = [x]
    if donors is not None:
        assert pool is not None
        parts.append(pool.images.get(donors).to(x.dtype))
    elif params is not None:
        parts.append(torch.from_numpy(params).view(-1, 1, 1, 1).expand(len(rows), 1, H, W).to(x.dtype))
    fixed, two = None, False
    if not reg.per_sample:
        fixed = torch.from_numpy(reg.mask).view(1, 1, H, W)
    else:
        ms, md = region_masks(reg, masks, rows, donors, edit)
        parts.append(torch.from_numpy(ms).unsqueeze(1).to(x.dtype))
        if md is not None and edit.how in ("colour", "spectrum"):
            parts.append(torch.from_numpy(md).unsqueeze(1).to(x.dtype))
            two = True
    packed = torch.cat(parts, dim=1) if len(parts) > 1 else x
    return probe.map_over_perturbations(packed, _perturb(edit, C, fixed, two, generator))
