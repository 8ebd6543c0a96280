"""baseline_explanation_change: the candidate's explanations may not drift too far from the released model's.

Reads the comparison of maps on shared picks (same sample, same explained class; see ``audit.compare_maps``):
fails when the median Spearman similarity of an explainer's maps falls below ``min_median_spearman``, or when the
mean share of attribution inside the ROI of any true class drops by more than ``max_roi_share_drop``. Needs the
baseline's maps.npz (written by default beside its results.json).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field, model_validator

from ...products import Finding
from ..base import Criterion, RuleParams
from ..evidence import Evidence
from .base import BaselineRule


class ExplanationChangeParams(RuleParams):
    explainer: str = "gradcam"
    min_median_spearman: float | None = Field(default=0.5, ge=-1.0, le=1.0)
    max_roi_share_drop: float | None = Field(default=None, ge=0.0, le=1.0)
    min_samples: int = Field(default=3, ge=1, description="fewer compared samples is an error, not a pass")

    @model_validator(mode="after")
    def _one_limit(self) -> ExplanationChangeParams:
        if self.min_median_spearman is None and self.max_roi_share_drop is None:
            raise ValueError("set min_median_spearman, max_roi_share_drop or both")
        return self


class BaselineExplanationChange(BaselineRule[ExplanationChangeParams]):
    kind = "baseline_explanation_change"
    title = "Explanation change since baseline"
    criterion = Criterion("median Spearman ρ of maps against the baseline's", "correlation, −1–1", "below")
    needs = frozenset({"maps"})

    def compare(self, comp: Mapping[str, Any], evidence: Evidence) -> list[Finding]:
        p = self.params
        explanations = comp.get("explanations")
        if explanations is None:
            return [self.error("the baseline has no maps.npz beside its results.json (or the held-out sets differ): "
                               "explanations cannot be compared")]
        e = explanations.get(p.explainer)
        if e is None:
            return [self.error(f"explainer {p.explainer!r} was not run in both audits "
                               f"(compared: {', '.join(explanations) or 'none'})")]
        if e["status"] != "ok" or e["n_compared"] < p.min_samples:
            return [self.error(f"{p.explainer}: only {e['n_compared']} sample(s) could be compared "
                               f"(need {p.min_samples}){': ' + e['reason'] if e.get('reason') else ''}")]
        problems = []
        median = e["spearman"]["median"]
        if p.min_median_spearman is not None and median < p.min_median_spearman:
            problems.append(f"median Spearman similarity of {p.explainer} maps {median:.2f} < "
                            f"{p.min_median_spearman:.2f} over {e['n_compared']} samples")
        dropped = []
        if p.max_roi_share_drop is not None:
            dropped = [c for c in e["roi_share_per_class"] if -c["delta"] > p.max_roi_share_drop]
            for c in dropped:
                problems.append(f"'{c['class']}' share inside the ROI {c['baseline']:.2f} → {c['candidate']:.2f}")
        if problems:
            msg = "; ".join(problems)
        else:
            msg = (f"{p.explainer} maps of {e['n_compared']} samples: median Spearman {median:.2f}"
                   + (f" (limit {p.min_median_spearman:.2f})" if p.min_median_spearman is not None else "")
                   + ("; no class lost more than " f"{p.max_roi_share_drop:.2f} ROI share"
                      if p.max_roi_share_drop is not None else ""))
        ids = [r["id"] for r in e["lowest"]]
        return [self.finding(bool(problems), msg, median, p.min_median_spearman, ids,
                             {"explainer": p.explainer, "spearman": e["spearman"], "ssim": e["ssim"],
                              "roi_share_per_class": e["roi_share_per_class"],
                              "roi_share_dropped": [c["class"] for c in dropped]})]
