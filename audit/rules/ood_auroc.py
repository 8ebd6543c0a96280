"""ood_auroc_min: an OOD score separates the held-out set from each OOD set (a user's folder, built-in far-OOD
sets) with an AUROC (OOD the positive class, DeLong interval) that reaches a floor; the worst set counts."""

from __future__ import annotations

from pydantic import Field

from ..products import Finding
from ..robustness.result import OODRun
from ._robustness import Missing, fmt_ci, part
from .base import Criterion, Rule, RuleParams
from .evidence import Evidence


class OODAurocParams(RuleParams):
    threshold: float = Field(ge=0.0, le=1.0)
    detector: str = Field(default="msp", description="one of robustness.ood.detectors")
    sets: list[str] = Field(default_factory=list, description="OOD sets judged ('folder' or far-OOD names); default: "
                            "every one scored")


class OODAurocMin(Rule[OODAurocParams]):
    kind = "ood_auroc_min"
    title = "OOD detection floor"
    needs = frozenset({"single_label"})
    criterion = Criterion("AUROC of the OOD score (OOD vs held-out)", "ROC AUC", "below")
    examples = ({"threshold": 0.5}, {"threshold": 0.9, "detector": "energy"})

    def check(self, evidence: Evidence) -> list[Finding]:
        p = self.params
        try:
            run: OODRun = part(evidence, "ood")
        except Missing as e:
            return [self.error(str(e))]
        if run.status == "not_applicable":
            return [self.not_applicable(run.reason)]
        if p.detector in run.skipped:
            return [self.error(f"OOD detector {p.detector} was not scored: {run.skipped[p.detector]}")]
        sets = p.sets or list(run.sets)
        found = [run.result(p.detector, s) for s in sets]
        missing = [s for s, r in zip(sets, found, strict=True) if r is None]
        if missing:
            return [self.error(f"not scored with {p.detector}: {', '.join(missing)} (robustness.ood lists detectors "
                               f"{', '.join(sorted({r.detector for r in run.results}))} and sets "
                               f"{', '.join(run.sets)})")]
        rs = [r for r in found if r is not None]
        worst = min(rs, key=lambda r: r.separation.auroc)
        s = worst.separation
        msg = (f"{p.detector} AUROC {s.auroc:.4f}{fmt_ci(s.auroc_interval)} on '{worst.ood_set}' ({s.n_ood} OOD vs "
               f"{s.n_id} held-out), the lowest of {len(rs)} set(s); FPR at 95 % TPR {s.fpr95:.3f}; floor "
               f"{p.threshold:.4f}")
        details = {"detector": p.detector, "per_set": {r.ood_set: r.separation.auroc for r in rs},
                   "worst": worst.ood_set}
        return [self.finding(s.auroc < p.threshold, msg, s.auroc, p.threshold, details=details)]
