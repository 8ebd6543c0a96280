"""class_recall_min: every (or every listed) class reaches a recall floor; thresholds may differ per class."""

from __future__ import annotations

from pydantic import Field

from ..products import Finding
from .base import Criterion, Rule, RuleParams
from .evidence import Evidence


class ClassRecallParams(RuleParams):
    threshold: float = Field(ge=0.0, le=1.0)
    classes: list[str] | None = None  # default: every class
    per_class: dict[str, float] = Field(default_factory=dict, description="class name -> its own floor")


class ClassRecallMin(Rule[ClassRecallParams]):
    kind = "class_recall_min"
    title = "Per-class recall floor"
    needs = frozenset({"single_label"})
    examples = ({"threshold": 0.5},)
    criterion = Criterion("recall of the worst class against its floor", "recall (0–1)", "below")

    def check(self, evidence: Evidence) -> list[Finding]:
        p = self.params
        names = p.classes or list(evidence.classes)
        for n in [*names, *p.per_class]:
            evidence.class_index(n)  # KeyError names an unknown class
        worst_gap, worst = None, None
        failing: list[str] = []
        table = {}
        for cm in evidence.metrics.per_class:
            if cm.name not in names:
                continue
            floor = p.per_class.get(cm.name, p.threshold)
            if cm.support == 0:
                table[cm.name] = {"recall": None, "threshold": floor, "support": 0}
                continue
            table[cm.name] = {"recall": cm.recall, "threshold": floor, "support": cm.support}
            gap = cm.recall - floor
            if gap < 0:
                failing.append(f"'{cm.name}' {cm.recall:.3f} < {floor:.3f}")
            if worst_gap is None or gap < worst_gap:
                worst_gap, worst = gap, cm
        if worst is None:
            return [self.error("no listed class has any held-out sample")]
        floor = p.per_class.get(worst.name, p.threshold)
        ids: list[str] = []
        if failing:
            pr = evidence.predictions
            ci = evidence.class_index(worst.name)
            rows = (pr.labels == ci) & ~pr.correct
            ids = [str(s) for s in pr.ids[rows][:20]]
            msg = f"{len(failing)} class(es) below their recall floor: " + "; ".join(failing)
        else:
            msg = f"every class at or above its recall floor; lowest '{worst.name}' = {worst.recall:.3f}"
        return [self.finding(bool(failing), msg, worst.recall, floor, ids,
                             {"worst_class": worst.name, "per_class": table})]
