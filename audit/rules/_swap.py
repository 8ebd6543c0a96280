"""Region swaps: donor images whose region replaces a sample's, and batched probabilities of the edited images."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..engine.probe import ModelProbe
from ._regions import Region
from .evidence import Evidence

if TYPE_CHECKING:
    from .confounder_region import ConfounderRegionParams


@dataclass(frozen=True)
class Donors:
    """Images whose regions are swapped in: up to ``donors_per_class`` held-out images per true class."""

    ids: np.ndarray  # (m,) str
    labels: np.ndarray  # (m,) true class
    images: ImageSource
    rois: list[np.ndarray | None]
    max_overlap: float

    @classmethod
    def build(cls, evidence: Evidence, probe: ModelProbe, p: ConfounderRegionParams) -> Donors:
        pr = evidence.predictions
        rng = evidence.rng(f"{p.id}:donor-pool")
        rows: list[int] = []
        for c in range(len(evidence.classes)):
            r = np.flatnonzero(pr.labels == c)
            if len(r) > p.donors_per_class:
                r = np.sort(rng.choice(r, size=p.donors_per_class, replace=False))
            rows.extend(int(i) for i in r)
        ids = [str(pr.ids[i]) for i in rows]
        return cls(np.array(ids, dtype=object), pr.labels[rows], ImageSource(probe, ids),
                   [probe.roi(s) for s in ids], p.max_roi_overlap)

    def pick(self, reg: Region, ids: list[str], pred: np.ndarray, rng: np.random.Generator
             ) -> tuple[np.ndarray, np.ndarray]:
        """For each sample, a donor of another true class than its prediction and one of the same class
        (indices into the pool; -1 when none). Donors whose ROI covers the region are not used."""
        area = reg.mask.sum()
        ok = np.array([r is None or (r & reg.mask).sum() / area <= self.max_overlap for r in self.rois], dtype=bool)
        other = np.full(len(ids), -1)
        same = np.full(len(ids), -1)
        for i, (sid, c) in enumerate(zip(ids, pred, strict=True)):
            o = np.flatnonzero(ok & (self.labels != c))
            s_ = np.flatnonzero(ok & (self.labels == c) & (self.ids != sid))
            if len(o):
                other[i] = int(rng.choice(o))
            if len(s_):
                same[i] = int(rng.choice(s_))
        return other, same


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


def region_probs(probe: ModelProbe, src: ImageSource, rows: np.ndarray, mask: np.ndarray,
                 fill: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None,
                 donors: ImageSource | None = None, donor_idx: np.ndarray | None = None) -> np.ndarray:
    """Probabilities of the images ``rows`` with the ``mask`` region replaced, in memory-bounded chunks.

    With ``donors`` the region comes from donor image ``donor_idx[row]`` (a swap; donors travel to the
    device as extra channels), else from ``fill(batch, mask)``.
    """
    out = [np.zeros((0, probe.predictions.num_classes))]
    m = torch.from_numpy(mask)
    for s in range(0, len(rows), src.chunk):
        r = rows[s:s + src.chunk]
        x = src.get(r)
        if donors is not None and donor_idx is not None:
            C = x.shape[1]
            packed = torch.cat([x, donors.get(donor_idx[r])], dim=1)

            def perturb(b: torch.Tensor, C: int = C) -> torch.Tensor:
                mm = m.to(b.device, b.dtype)[None, None]
                return b[:, :C] * (1.0 - mm) + b[:, C:] * mm

            out.append(probe.map_over_perturbations(packed, perturb))
        else:
            assert fill is not None
            out.append(probe.map_over_perturbations(x, lambda b: fill(b, m)))
    return np.concatenate(out)


