"""baseline_flips: at most N samples right under the baseline may be wrong under the candidate."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from ...products import Finding
from ..base import Criterion, RuleParams
from ..evidence import Evidence
from .base import BaselineRule


class FlipsParams(RuleParams):
    max_new_wrong: int = Field(ge=0)


class BaselineFlips(BaselineRule[FlipsParams]):
    kind = "baseline_flips"
    title = "New errors since baseline"
    criterion = Criterion("samples newly wrong (right → wrong)", "count", "above")
    needs = frozenset({"single_label"})
    examples = ({"max_new_wrong": 0},)

    def compare(self, comp: Mapping[str, Any], evidence: Evidence) -> list[Finding]:
        p = self.params
        flips = comp.get("flips")
        if flips is None:
            return [self.error("flips need the same held-out set in both audits (paired comparison)")]
        n = flips["to_wrong"]
        msg = f"{n} sample(s) right under the baseline are wrong now ({flips['to_right']} fixed)"
        ids = [f["id"] for f in flips["to_wrong_examples"][:20]]
        return [self.finding(n > p.max_new_wrong, msg, n, p.max_new_wrong, ids)]
