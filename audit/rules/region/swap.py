"""Counterfactual edits of an image region and the task scores of the edited images.

Donor-based edits (``swap``: the region's pixels, ``colour``: its colour statistics, ``spectrum``: its
high-frequency amplitudes) take the region from another held-out image; occlusions (``mean``, ``blur``,
``noise``, ``greyscale``) replace it from the image itself. Masks, donors and images travel to the probe's device
packed as channels of one tensor, so every model pass goes through ``probe.map_over_perturbations``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ...engine.probe import ModelProbe
from .._shortcuts import colour_transfer, fill_region, grown, spectrum_transfer
from ..evidence import Evidence
from .match import Matcher, matcher_for, tolerance
from .regions import Region

DONOR_MODES = ("swap", "colour", "spectrum")
UNMATCHED = -2  # a donor index: candidates exist, but none is close enough in what the edit does not move


class ImageSource:
    """Model inputs for a list of ids: held in memory when small, else decoded per chunk (bounded memory)."""

    def __init__(self, probe: ModelProbe, ids: list[str], budget_values: int = 1 << 26) -> None:
        self.probe, self.ids = probe, ids
        per = probe.preprocess.channels * probe.input_size[0] * probe.input_size[1]
        self.chunk = max(1, (budget_values // 4) // per)
        self.all = probe.images(ids) if len(ids) * per <= budget_values else None

    def get(self, rows: np.ndarray) -> torch.Tensor:
        if self.all is not None:
            return self.all[torch.from_numpy(np.asarray(rows, dtype=np.int64))]
        return self.probe.images([self.ids[int(i)] for i in rows])


@dataclass(frozen=True)
class DonorPool:
    """Held-out images whose region is given to others: up to ``per_group`` per group (true class), seeded."""

    ids: list[str]
    rows: np.ndarray  # prediction rows of the donors
    images: ImageSource
    rois: list[np.ndarray | None]  # grown by the rule's margin
    member_of: np.ndarray  # (m, G) bool: the donors' true groups

    @classmethod
    def build(cls, evidence: Evidence, probe: ModelProbe, per_group: int, salt: str, margin_px: int) -> DonorPool:
        pr = evidence.predictions
        task = probe.task
        rng = evidence.rng(f"{salt}:donor-pool")
        rows: set[int] = set()
        for g in range(len(task.groups())):
            r = np.flatnonzero(task.members(pr, g, "true"))
            if len(r) > per_group:
                r = np.sort(rng.choice(r, size=per_group, replace=False))
            rows.update(int(i) for i in r)
        order = np.array(sorted(rows), dtype=np.int64)
        ids = [str(pr.ids[i]) for i in order]
        member_of = np.stack([task.members(pr, g, "true")[order] for g in range(len(task.groups()))], axis=1)
        return cls(ids, order, ImageSource(probe, ids), [grown(probe.roi(s), margin_px) for s in ids], member_of)

    def choose(self, evidence: Evidence, probe: ModelProbe, reg: Region, sample_ids: Sequence[str], group: int,
               rng: np.random.Generator, max_overlap: float,
               context: tuple[np.ndarray, np.ndarray, float] | None = None,
               match_k: int = 5, avoid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per sample, a donor that does not truly belong to ``group`` and one that does (the control); indices
        into the pool, -1 when there is none. Donors whose ROI covers the region are not used; for a per-sample
        region (the background) donors need a ROI. With ``context`` (descriptions from ``_match``: samples
        (n, d), donors (m, d), and the largest distance a donor may have), each donor is drawn among the
        ``match_k`` of its kind within that distance that look most like the sample in what the edit does not
        move (a corner cut from a letterboxed image goes into a letterboxed image: no half bar that no training
        image holds); ``UNMATCHED`` where candidates exist but none is that close. ``avoid`` (n,) int: a
        group per sample whose members are not used as its "other" donor when others remain (the insertion
        control: an image of a third group takes the sample's own content away as the test donor does)."""
        in_group = probe.task.members(evidence.predictions, group, "true")[self.rows]
        if reg.per_sample:
            ok = np.array([r is not None for r in self.rois], dtype=bool)
        else:
            area = reg.mask.sum()
            whole = bool(reg.mask.all())
            ok = np.array([whole or r is None or (r & reg.mask).sum() / area <= max_overlap for r in self.rois],
                          dtype=bool)
        ids = np.array(self.ids, dtype=object)
        other = np.full(len(sample_ids), -1)
        same = np.full(len(sample_ids), -1)
        true_of: dict[int, np.ndarray] = {}
        for i, sid in enumerate(sample_ids):
            not_self = ids != sid
            pool_other = ok & ~in_group & not_self
            if avoid is not None and avoid[i] >= 0:
                h = int(avoid[i])
                if h not in true_of:
                    true_of[h] = probe.task.members(evidence.predictions, h, "true")[self.rows]
                if (pool_other & ~true_of[h]).any():
                    pool_other = pool_other & ~true_of[h]
            for cand, out in ((np.flatnonzero(pool_other), other),
                              (np.flatnonzero(ok & in_group & not_self), same)):
                if not len(cand):
                    continue
                if context is not None:
                    d = ((context[1][cand] - context[0][i]) ** 2).sum(1)
                    order = np.argsort(d, kind="stable")
                    cand = cand[order[d[order] <= context[2] ** 2][:match_k]]
                    if not len(cand):
                        out[i] = UNMATCHED
                        continue
                out[i] = int(rng.choice(cand))
        return other, same

    def matched(self, reg: Region, edit: Edit, width: int, quantile: float | None
                ) -> tuple[Matcher, np.ndarray, float] | None:
        """The matcher for a region and edit fitted on this pool, the donors' descriptions and the largest
        distance a donor may have (``_match.tolerance`` at ``quantile`` for family matchers; none for rings)."""
        m = matcher_for(reg, edit.how, width, edit.norm, edit.cutoff)
        if m is None:
            return None
        fitted, desc = m.fitted(self.images.get(np.arange(len(self.ids))))
        tol = (tolerance(desc, self.member_of, quantile) if m.ring is None and quantile is not None
               else float("inf"))
        return fitted, desc, tol


@dataclass(frozen=True)
class Edit:
    """How a region is replaced: ``how`` (swap, colour, spectrum, mean, blur, noise, greyscale) and its settings."""

    how: str
    norm: tuple[Sequence[float], Sequence[float]]
    sigma: float = 2.0
    cutoff: float = 0.5
    margin_px: int = 0

    @property
    def uses_donor(self) -> bool:
        return self.how in DONOR_MODES


def _masks(reg: Region, sample_rois: list[np.ndarray | None], donor_rois: list[np.ndarray | None] | None,
           H: int, W: int) -> torch.Tensor:
    """(n, 1, H, W) float masks: the fixed region, or per sample everything off its (and its donor's) grown ROI."""
    n = len(sample_rois)
    if not reg.per_sample:
        return torch.from_numpy(reg.mask).float().view(1, 1, H, W).expand(n, 1, H, W)
    out = np.ones((n, H, W), dtype=bool)
    for i, r in enumerate(sample_rois):
        if r is not None:
            out[i] &= ~r
        if donor_rois is not None and donor_rois[i] is not None:
            out[i] &= ~donor_rois[i]
    return torch.from_numpy(out).float().view(n, 1, H, W)


def edited_scores(probe: ModelProbe, src: ImageSource, rows: np.ndarray, reg: Region, edit: Edit,
                  rois: list[np.ndarray | None], donors: DonorPool | None = None,
                  donor_idx: np.ndarray | None = None, generator: torch.Generator | None = None) -> np.ndarray:
    """Task scores (len(rows), K) of the images ``rows`` of ``src`` with region ``reg`` edited, in chunks.
    ``rois``: the samples' grown ROIs (per-sample regions); ``donor_idx``: one pool index per row of ``src``."""
    H, W = probe.input_size
    out: list[np.ndarray] = []
    for s in range(0, len(rows), src.chunk):
        r = rows[s:s + src.chunk]
        x = src.get(r)
        C = x.shape[1]
        if edit.uses_donor:
            assert donors is not None and donor_idx is not None
            di = donor_idx[r]
            d = donors.images.get(di)
            m = _masks(reg, [rois[i] for i in r], [donors.rois[i] for i in di], H, W)
            packed = torch.cat([x, d, m.to(x.dtype)], dim=1)

            def perturb(b: torch.Tensor, C: int = C) -> torch.Tensor:
                xx, dd, mm = b[:, :C], b[:, C:2 * C], b[:, 2 * C:2 * C + 1]
                if edit.how == "swap":
                    return xx * (1.0 - mm) + dd * mm
                if edit.how == "colour":
                    return colour_transfer(xx, dd, mm, edit.norm)
                return spectrum_transfer(xx, dd, mm, edit.cutoff, edit.norm)
        else:
            m = _masks(reg, [rois[i] for i in r], None, H, W)
            packed = torch.cat([x, m.to(x.dtype)], dim=1)

            def perturb(b: torch.Tensor, C: int = C) -> torch.Tensor:
                return fill_region(b[:, :C], b[:, C:C + 1] > 0.5, edit.how, edit.sigma, generator, edit.norm)

        out.append(probe.map_over_perturbations(packed, perturb))
    return np.concatenate(out) if out else np.zeros((0, len(probe.task.classes)))
