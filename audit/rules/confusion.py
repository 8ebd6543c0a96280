"""confusion_max: the rate at which one named class is predicted as another stays under a ceiling."""

from __future__ import annotations

from pydantic import Field

from ..products import Finding
from .base import Criterion, Rule, RuleParams
from .evidence import Evidence


class ConfusionParams(RuleParams):
    true_class: str
    predicted_class: str
    threshold: float = Field(ge=0.0, le=1.0, description="max share of true_class samples predicted as predicted_class")


class ConfusionMax(Rule[ConfusionParams]):
    kind = "confusion_max"
    title = "Confusion between two classes"
    needs = frozenset({"single_label"})
    examples = ({"true_class": "{class0}", "predicted_class": "{class1}", "threshold": 0.5},)
    criterion = Criterion("confusion rate", "share of the true class's samples", "above")

    def check(self, evidence: Evidence) -> list[Finding]:
        p = self.params
        a, b = evidence.class_index(p.true_class), evidence.class_index(p.predicted_class)
        row = evidence.metrics.confusion[a]
        if row.sum() == 0:
            return [self.error(f"class '{p.true_class}' has no held-out samples")]
        rate = float(evidence.metrics.confusion_normalized[a, b])
        pr = evidence.predictions
        ids = [str(s) for s in pr.ids[(pr.labels == a) & (pr.preds == b)][:20]]
        msg = (f"{int(row[b])} of {int(row.sum())} '{p.true_class}' samples predicted as "
               f"'{p.predicted_class}' (rate {rate:.3f}, ceiling {p.threshold:.3f})")
        return [self.finding(rate > p.threshold, msg, rate, p.threshold, ids)]
