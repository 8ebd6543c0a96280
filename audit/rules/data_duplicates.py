"""data_duplicates: the same picture under two labels, or in both the training and the held-out set.

Reads the data-checks stage's product: exact duplicates (same decoded pixels) and near duplicates (perceptual
hash within a few bits, confirmed on thumbnails). ``check = "cross_class"`` counts held-out pairs whose labels
differ (label noise, or one image filed twice); ``check = "train_overlap"`` the share of held-out images that
also appear in the training listing (``data.train_manifest``): every metric of such a set is inflated.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..products import Finding
from .base import Criterion, Rule, RuleParams
from .evidence import Evidence

CRITERIA = {
    "cross_class": Criterion("cross-class duplicate pairs", "pairs of held-out images", "above"),
    "train_overlap": Criterion("held-out images also in training", "fraction of held-out images", "above"),
}


class DataDuplicatesParams(RuleParams):
    check: Literal["cross_class", "train_overlap"] = "cross_class"
    max_pairs: int = Field(default=0, ge=0, description="cross_class: most duplicate pairs allowed")
    max_fraction: float = Field(default=0.0, ge=0.0, le=1.0, description="train_overlap: largest share allowed")


class DataDuplicates(Rule[DataDuplicatesParams]):
    kind = "data_duplicates"
    title = "Duplicate images across classes or between training and held-out sets"
    criterion = CRITERIA["cross_class"]  # or "train_overlap", as configured (each finding states its own)
    examples = ({"check": "cross_class"}, {"check": "train_overlap"})

    def check(self, evidence: Evidence) -> list[Finding]:
        p = self.params
        dc = evidence.data
        crit = CRITERIA[p.check]
        if dc is None:
            return [self.not_applicable("the data checks did not run")]
        if not dc.ran("duplicates" if p.check == "cross_class" else "train_overlap"):
            return [self.not_applicable(f"{'duplicates' if p.check == 'cross_class' else 'train_overlap'} is not in "
                                        "data.checks")]
        if p.check == "cross_class":
            n = dc.n_cross_class_duplicates
            ex = dc.cross_class_duplicates[:5]
            msg = crit.lead(n, p.max_pairs, "", digits=0) + (
                f": {n} pair(s) of held-out images are the same picture under different labels"
                + (": " + "; ".join(f"{d.a} ('{d.labels[0]}') and {d.b} ('{d.labels[1]}'), {d.kind}"
                                    for d in ex) if ex else "")
                + f". Same-label duplicates: {dc.n_same_class_duplicates} (information).")
            ids = [s for d in dc.cross_class_duplicates[:6] for s in (d.a, d.b)]
            return [self.finding(n > p.max_pairs, msg, n, p.max_pairs, ids,
                                 {"n_same_class": dc.n_same_class_duplicates}, criterion=crit)]
        if dc.train is None:
            return [self.not_applicable("no training listing given (set data.train_manifest to check for "
                                        "train/held-out leakage)")]
        t = dc.train
        frac = float(t["fraction_heldout_overlapping"])
        msg = crit.lead(frac, p.max_fraction, "") + (
            f": {t['n_heldout_overlapping']} of {dc.n_images} held-out images ({frac:.1%}) also appear in the "
            f"training listing of {t['n_train']} images ({t['n_heldout_exact']} exact); metrics on them are "
            "inflated.")
        ids = [e["heldout"] for e in t["examples"][:12]]
        return [self.finding(frac > p.max_fraction, msg, frac, p.max_fraction, ids, {"train": t}, criterion=crit)]
