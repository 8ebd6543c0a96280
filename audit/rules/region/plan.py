"""What confounder_region measures: its tests (an edit on a region), the samples each group is judged on, and the
directions of each (test, group) cell with their donors chosen up front.

``Setup`` holds what every cell shares (the samples, their ROIs, the donor pool, the matchers, the acquisition
levels); ``directions`` lays out one cell's removal and insertion. Donors are drawn per direction from a seeded
stream, among the ``match_k`` most alike in what the edit does not move (``match``), for all of a direction's
samples at once (``swap.DonorPool.choose``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ...engine.probe import ModelProbe
from .._shortcuts import unnormalised
from ..evidence import Evidence
from .cells import Direction, ParamsFn
from .edits import Edit, Masks
from .levels import level_table, measure, parameters
from .match import Matcher
from .params import ConfounderRegionParams
from .regions import Region
from .swap import DonorPool, ImageSource, region_ok


@dataclass(frozen=True)
class Test:
    """One edit on one region; ``key`` names it in the details (the region's key for a one-edit rule)."""

    key: str
    label: str
    edit: Edit
    region: Region

    @property
    def info(self) -> bool:
        return self.region.info


@dataclass
class Setup:
    """What every cell of one rule shares."""

    p: ConfounderRegionParams
    evidence: Evidence
    probe: ModelProbe
    ids: list[str]  # the samples (rows of ``src``), in prediction order
    members: dict[int, list[int]]  # group -> rows of ``src`` judged in it (removal)
    others: dict[int, list[int]]  # group -> rows of ``src`` of other groups (insertion)
    src: ImageSource
    pool: DonorPool | None
    masks: Masks
    has_roi: np.ndarray  # (n,) samples with a ROI
    own_group: np.ndarray  # (n,) the group each sample is assigned to (the first; -1 none)
    matchers: dict[tuple[str, str], tuple[Matcher, np.ndarray, float] | None] = field(default_factory=dict)
    described: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    levels: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    tables: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)

    def region_mask(self, reg: Region, which: str, rows: np.ndarray) -> torch.Tensor:
        """(k, 1, H, W) float: where a level is measured on samples (``which`` "samples") or donors."""
        H, W = self.probe.input_size
        if not reg.per_sample:
            return torch.from_numpy(reg.mask).float().view(1, 1, H, W).expand(len(rows), 1, H, W)
        rois = self.masks.samples if which == "samples" else self.masks.donors
        assert rois is not None
        m = rois[rows]
        return torch.from_numpy(m if reg.inside else ~m).float().unsqueeze(1)

    def raw(self, images: torch.Tensor) -> torch.Tensor:
        return unnormalised(images.float(), (self.probe.preprocess.mean, self.probe.preprocess.std))[0].clamp(0, 1)

    def level_of(self, test: Test, which: str) -> np.ndarray:
        """The acquisition level of every sample (or donor) on the test's region."""
        key = (test.key, which)
        if key not in self.levels:
            n = len(self.ids) if which == "samples" else len(self.pool.ids)  # type: ignore[union-attr]
            source = self.src if which == "samples" else self.pool.images  # type: ignore[union-attr]
            out = np.zeros(n)
            for s in range(0, n, source.chunk):
                rows = np.arange(s, min(n, s + source.chunk))
                out[rows] = measure(test.edit.level, self.raw(source.get(rows)),
                                    self.region_mask(test.region, which, rows))
            self.levels[key] = out
        return self.levels[key]

    def params_for(self, test: Test) -> ParamsFn:
        """The degradation parameters of a level test for (sample rows, donors); blur and JPEG tables are
        computed for the samples a look needs, once each."""
        how = test.edit.level
        H, W = self.probe.input_size
        own, donor = self.level_of(test, "samples"), self.level_of(test, "donors")

        def params(rows: np.ndarray, donors: np.ndarray) -> np.ndarray:
            table = None
            if how in ("blur", "jpeg"):
                key = (test.key, how)
                if key not in self.tables:
                    self.tables[key] = np.full((len(self.ids), 10 if how == "blur" else 9), np.nan)
                t = self.tables[key]
                need = np.unique(rows[np.isnan(t[rows, 0])])
                if len(need):
                    t[need] = level_table(how, self.raw(self.src.get(need)),
                                          self.region_mask(test.region, "samples", need))
                table = t[rows]
            return parameters(how, own[rows], donor[donors], table, H, W)

        return params

    def context(self, test: Test) -> tuple[Matcher, np.ndarray, float] | None:
        p = self.p
        key = (test.region.key, test.edit.how)
        if key not in self.matchers:
            H, W = self.probe.input_size
            ring_px = max(2, round(0.05 * min(H, W)))
            self.matchers[key] = (self.pool.matched(test.region, test.edit.how, ring_px, test.edit.norm,  # type: ignore[union-attr]
                                                    test.edit.cutoff, p.match_quantile)
                                  if p.match_context and self.pool is not None else None)
            m = self.matchers[key]
            if m is not None:
                self.described[key] = np.concatenate([m[0].describe(self.src.get(np.arange(s, min(len(self.ids),
                                                      s + self.src.chunk)))) for s in range(0, len(self.ids),
                                                                                         self.src.chunk)])
        return self.matchers[key]


def directions(setup: Setup, test: Test, g: int, ok_rows: np.ndarray, ok_donors: np.ndarray) -> list[Direction]:
    """The removal (donor edits) and insertion directions of cell (test, g), samples in a seeded order, donors
    chosen for all of them; an insertion follows its removal. Level edits have the insertion only (a degradation
    can be given, not taken away)."""
    p, ev, pool = setup.p, setup.evidence, setup.pool
    assert pool is not None
    ctx = setup.context(test)
    key = (test.region.key, test.edit.how)
    out: list[Direction] = []
    kinds = ("insertion",) if test.edit.how == "level" else ("removal", "insertion")
    for direction in kinds:
        rows = np.array(setup.members[g] if direction == "removal" else setup.others.get(g, []), dtype=np.int64)
        rows = rows[ok_rows[rows]] if len(rows) else rows
        if not len(rows):
            continue
        rows = ev.rng(f"{p.id}:{test.key}:{g}:{direction}:order").permutation(rows)
        avoid = None
        if direction == "insertion":  # the control donor comes from a third group where there is one
            avoid = setup.own_group[rows]
        c = None if ctx is None else (setup.described[key][rows], ctx[1], ctx[2])
        other, same = pool.choose([setup.ids[i] for i in rows], g,
                                  ev.rng(f"{p.id}:{test.key}:{g}:{direction}:donors"), ok_donors, c, p.match_k,
                                  avoid)
        test_d, ctrl_d = (other, same) if direction == "removal" else (same, other)
        ok = (test_d >= 0) & (ctrl_d >= 0)
        n_unmatched = int(((test_d == -2) | (ctrl_d == -2)).sum())
        d = Direction(test.region, test.edit, g, direction, rows[ok], test_d[ok], ctrl_d[ok], n_unmatched,
                      waits_for=out[0] if out else None,
                      params=setup.params_for(test) if test.edit.how == "level" else None)
        out.append(d)
    return out


def donors_ok(setup: Setup, reg: Region) -> np.ndarray:
    pool = setup.pool
    assert pool is not None
    return region_ok(reg, pool.rois, pool.has_roi, setup.p.max_roi_overlap)
