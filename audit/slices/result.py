"""The slice stage's product: every slice tried with its statistics, members and description, JSON-safe through
``as_dict`` (results.json's ``slices``). Member ids let a later audit re-check a slice as a named subgroup."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np


def _r(v: float) -> float | None:
    return round(float(v), 6) if np.isfinite(v) else None


@dataclass(frozen=True)
class SliceColumn:
    """A metadata column or image property that tells the slice's members from the rest (AUC of it alone)."""

    column: str
    auc: float
    ci95: tuple[float, float]


@dataclass(frozen=True)
class FoundSlice:
    """One tried slice. Statistics are over its ``n`` confirmation members (samples the mixture was not fitted on);
    ``member_ids`` are every sample assigned to it. ``below_overall`` = overall metric - the slice's (> 0: worse, in
    the metric's own direction)."""

    rank: int
    name: str  # "slice-<rank>": its value in an exported manifest column
    n: int
    metric: float
    ci95: tuple[float, float]
    rest_metric: float
    gap: float  # to the rest (> 0: worse)
    gap_ci95: tuple[float, float]
    below_overall: float
    p_value: float
    p_adjusted: float
    significant: bool
    member_ids: tuple[str, ...]
    typical_ids: tuple[str, ...]
    columns: tuple[SliceColumn, ...] = ()
    images: tuple[np.ndarray, ...] = field(default=(), repr=False)  # typical members as (H, W, 3) [0, 1] arrays

    def as_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "name": self.name, "n": self.n, "size": len(self.member_ids),
                "metric": _r(self.metric), "ci95": [_r(v) for v in self.ci95], "rest_metric": _r(self.rest_metric),
                "gap": _r(self.gap), "gap_ci95": [_r(v) for v in self.gap_ci95],
                "below_overall": _r(self.below_overall), "p_value": _r(self.p_value),
                "p_adjusted": _r(self.p_adjusted), "significant": self.significant,
                "members": list(self.member_ids), "typical": list(self.typical_ids),
                "columns": [{"column": c.column, "auc": _r(c.auc), "ci95": [_r(v) for v in c.ci95]}
                            for c in self.columns]}


@dataclass(frozen=True)
class SlicesRun:
    status: Literal["measured", "not_applicable"]
    reason: str  # why not applicable, or the method in words
    metric: str = ""
    higher_is_better: bool = True
    label: str | None = None  # multi-label: the label sliced
    n: int = 0  # samples sliced
    n_confirmation: int = 0
    overall: float = float("nan")  # the metric over the confirmation part
    min_size: int = 0
    alpha: float = 0.0
    correction: str = ""
    seed: int = 0
    slices: tuple[FoundSlice, ...] = ()  # every slice tried, worst gap first
    left_out: int = 0  # samples without a finite metric (e.g. an image with no class in truth or answer)
    embedding: str = ""  # what embedded the samples

    @property
    def reported(self) -> tuple[FoundSlice, ...]:
        return tuple(s for s in self.slices if s.significant)

    def as_dict(self) -> dict[str, Any]:
        if self.status == "not_applicable":
            return {"status": self.status, "reason": self.reason}
        return {"status": self.status, "method": self.reason, "metric": self.metric,
                "higher_is_better": self.higher_is_better, "label": self.label, "n": self.n,
                "n_confirmation": self.n_confirmation, "overall": _r(self.overall), "min_size": self.min_size,
                "alpha": self.alpha, "correction": self.correction, "seed": self.seed, "left_out": self.left_out, "embedding": self.embedding,
                "slices": [s.as_dict() for s in self.slices]}
