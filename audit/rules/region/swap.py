"""Where the images and the donors of confounder_region's edits come from.

``ImageSource``: the model inputs of a list of ids (in memory when small, else decoded per chunk). ``DonorPool``:
held-out images whose region (pixels, colour statistics, spectrum, acquisition level) is given to others, up to
``donors_per_class`` per group, and the choice of a test and a control donor for many samples at once: candidate
sets and distances are matrices (samples × donors), so choosing donors for a whole group costs a few array
operations, not a loop over samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ...engine.probe import ModelProbe
from .._shortcuts import grown
from ..evidence import Evidence
from .match import Matcher, matcher_for, tolerance
from .regions import Region

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


def roi_stack(rois: Sequence[np.ndarray | None], H: int, W: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, H, W) bool ROI masks (False where a sample has none) and (n,) bool: has a ROI."""
    has = np.array([r is not None for r in rois], dtype=bool)
    out = np.zeros((len(rois), H, W), dtype=bool)
    for i, r in enumerate(rois):
        if r is not None:
            out[i] = r
    return out, has


def region_ok(reg: Region, rois: np.ndarray, has: np.ndarray, max_overlap: float) -> np.ndarray:
    """Which images a region applies to: a per-sample region needs a ROI; a fixed one may not be covered by the
    ROI beyond ``max_overlap`` of its area (replacing it would remove the object itself)."""
    if reg.per_sample:
        return has.copy()
    if reg.mask.all():
        return np.ones(len(has), dtype=bool)
    area = reg.mask.sum()
    return ~has | ((rois & reg.mask).sum(axis=(1, 2)) / area <= max_overlap)


def pick(dist: np.ndarray, k: int | None, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``dist`` (samples × donors; inf where a donor is no candidate), one donor drawn at random among
    the ``k`` nearest finite ones (all finite ones when ``k`` is None); -1 where a row has none. Also returns
    whether each row had any finite entry. Ties keep the donors' order."""
    n = dist.shape[0]
    finite = np.isfinite(dist)
    count = finite.sum(1)
    if k is not None:
        count = np.minimum(count, k)
    u = rng.random(n)
    out = np.full(n, -1, dtype=np.int64)
    rows = np.flatnonzero(count > 0)
    if len(rows):
        order = np.argsort(dist[rows], axis=1, kind="stable")
        j = np.minimum((u[rows] * count[rows]).astype(np.int64), count[rows] - 1)
        out[rows] = order[np.arange(len(rows)), j]
    return out, finite.any(1)


@dataclass(frozen=True)
class DonorPool:
    """Held-out images whose region is given to others: up to ``per_group`` per group (true class), seeded."""

    ids: list[str]
    rows: np.ndarray  # prediction rows of the donors
    images: ImageSource
    rois: np.ndarray  # (m, H, W) bool, grown by the rule's margin
    has_roi: np.ndarray  # (m,) bool
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
        rois, has = roi_stack([grown(probe.roi(s), margin_px) for s in ids], *probe.input_size)
        return cls(ids, order, ImageSource(probe, ids), rois, has, member_of)

    def choose(self, sample_ids: Sequence[str], group: int, rng: np.random.Generator, ok: np.ndarray,
               context: tuple[np.ndarray, np.ndarray, float] | None = None, match_k: int = 5,
               avoid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per sample, a donor that does not truly belong to ``group`` and one that does (the control); indices
        into the pool, -1 when there is none. ``ok`` (m,): the donors the region applies to. With ``context``
        (descriptions from ``match``: samples (n, d), donors (m, d), and the largest distance a donor may
        have), each donor is drawn among the ``match_k`` of its kind within that distance that look most like
        the sample in what the edit does not move (a corner cut from a letterboxed image goes into a letterboxed
        image: no half bar that no training image holds); ``UNMATCHED`` where candidates exist but none is that
        close. ``avoid`` (n,) int: a group per sample whose members are not used as its "other" donor when others
        remain (the insertion control: an image of a third group takes the sample's own content away as the test
        donor does)."""
        n = len(sample_ids)
        in_group = self.member_of[:, group]
        not_self = np.array(self.ids, dtype=object)[None, :] != np.array(list(sample_ids), dtype=object)[:, None]
        base_other = ok[None, :] & ~in_group[None, :] & not_self
        if avoid is not None:
            h = np.where(avoid >= 0, avoid, 0)
            third = base_other & ~self.member_of[:, h].T  # (n, m): others outside the avoided group
            prefer = (avoid >= 0) & third.any(1)
            base_other = np.where(prefer[:, None], third, base_other)
        base_same = ok[None, :] & in_group[None, :] & not_self
        if context is not None:
            a, b, tol = context
            d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
            dist = np.maximum(d2, 0.0)
            near = dist <= tol * tol
        else:
            dist = np.zeros((n, len(self.ids)))
            near = np.ones_like(dist, dtype=bool)
        out = []
        for cand in (base_other, base_same):
            d = np.where(cand & near, dist, np.inf)
            chosen, _ = pick(d, match_k if context is not None else None, rng)
            chosen[(chosen < 0) & cand.any(1)] = UNMATCHED
            out.append(chosen)
        return out[0], out[1]

    def matched(self, reg: Region, how: str, width: int, norm: tuple[Sequence[float], Sequence[float]],
                cutoff: float, quantile: float | None) -> tuple[Matcher, np.ndarray, float] | None:
        """The matcher for a region and edit fitted on this pool, the donors' descriptions and the largest
        distance a donor may have (``match.tolerance`` at ``quantile`` for family matchers; none for rings)."""
        m = matcher_for(reg, how, width, norm, cutoff)
        if m is None:
            return None
        fitted, desc = m.fitted(self.images.get(np.arange(len(self.ids))))
        tol = (tolerance(desc, self.member_of, quantile) if m.ring is None and quantile is not None
               else float("inf"))
        return fitted, desc, tol
