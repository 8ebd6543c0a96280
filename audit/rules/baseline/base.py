"""The base of the comparison-phase rule kinds: they read the diff against the released model."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from typing import Any

from ...products import Finding
from ..base import P, Rule
from ..evidence import Evidence

NO_BASELINE = "this rule compares with a released model: run with --baseline RESULTS"


class BaselineRule(Rule[P]):
    """Runs after the main rules; without a baseline every such rule is an ``error`` (never a pass)."""

    phase = "comparison"

    def check(self, evidence: Evidence) -> list[Finding]:
        comp = evidence.comparison
        if not isinstance(comp, Mapping):
            return [self.error(NO_BASELINE)]
        return self.compare(comp, evidence)

    @abstractmethod
    def compare(self, comp: Mapping[str, Any], evidence: Evidence) -> list[Finding]:
        """Findings from the comparison (see ``audit.compare.reports.compare_results``)."""
