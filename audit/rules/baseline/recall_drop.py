"""baseline_recall_drop: no class may lose more recall than allowed since the baseline."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from ...products import Finding
from ..base import Criterion, RuleParams
from ..evidence import Evidence
from .base import BaselineRule


class RecallDropParams(RuleParams):
    max_drop: float = Field(ge=0.0, le=1.0)


class BaselineRecallDrop(BaselineRule[RecallDropParams]):
    kind = "baseline_recall_drop"
    title = "Per-class recall drop since baseline"
    criterion = Criterion("largest recall drop of a class since the baseline", "proportion, 0–1", "above")
    needs = frozenset({"single_label"})
    examples = ({"max_drop": 0.1},)

    def compare(self, comp: Mapping[str, Any], evidence: Evidence) -> list[Finding]:
        p = self.params
        rows = comp["per_class"]
        if not rows:
            return [self.error("no class in common with the baseline")]
        worst = min(rows, key=lambda r: r["recall_delta"])
        drop = -worst["recall_delta"]
        regressed = [r for r in rows if -r["recall_delta"] > p.max_drop]
        if regressed:
            msg = "recall regressed: " + "; ".join(
                f"'{r['class']}' {r['recall_baseline']:.3f} → {r['recall_candidate']:.3f}" for r in regressed)
        else:
            msg = f"no class lost more than {p.max_drop:.3f} recall; largest drop '{worst['class']}' {drop:.3f}"
        ids = []
        for f in comp.get("flips", {}).get("to_wrong_examples", []):
            if f["label"] in {r["class"] for r in regressed}:
                ids.append(f["id"])
        return [self.finding(bool(regressed), msg, drop, p.max_drop, ids[:20],
                             {"worst_class": worst["class"], "per_class": rows})]
