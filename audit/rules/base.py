"""The rule interface every rule kind implements."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from ..types import Finding, Severity, Status

if TYPE_CHECKING:
    from .evidence import Evidence


class RuleParams(BaseModel):
    """Fields every rule entry in a pack has; each kind adds its own (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
    kind: str
    severity: Severity = "error"
    description: str = ""


class Rule(ABC):
    """One rule kind. ``check`` reads the evidence and returns findings; it must not mutate anything."""

    kind: ClassVar[str]
    title: ClassVar[str]
    Params: ClassVar[type[RuleParams]] = RuleParams
    # "main" rules read the audit's evidence; "comparison" rules run afterwards and read
    # evidence.comparison (the diff against a baseline results.json)
    phase: ClassVar[str] = "main"

    def __init__(self, params: RuleParams) -> None:
        self.params = params

    @abstractmethod
    def check(self, evidence: Evidence) -> list[Finding]:
        """Findings for this rule (usually one)."""

    def finding(
        self,
        failed: bool,
        message: str,
        value: float | None = None,
        threshold: float | None = None,
        sample_ids: Sequence[str] = (),
        details: dict[str, Any] | None = None,
    ) -> Finding:
        """A finding whose status follows from ``failed`` and the rule's severity.

        A NaN or infinite measured value is never a pass: it becomes an ``error`` finding.
        """
        status: Status
        if value is not None and not math.isfinite(float(value)):
            status = "error"
            message = f"could not evaluate: measured value is {value} ({message})"
            value = None
        elif threshold is not None and not math.isfinite(float(threshold)):
            status = "error"
            message = f"could not evaluate: threshold is {threshold} ({message})"
            threshold = None
        elif failed:
            status = "fail" if self.params.severity == "error" else "warn"
        else:
            status = "pass"
        return Finding(
            rule=self.params.id,
            kind=self.kind,
            severity=self.params.severity,
            status=status,
            message=message,
            value=None if value is None else float(value),
            threshold=None if threshold is None else float(threshold),
            sample_ids=tuple(sample_ids),
            details=details or {},
        )

    def error(self, message: str) -> Finding:
        return Finding(
            rule=self.params.id, kind=self.kind, severity=self.params.severity, status="error", message=message
        )

