"""The rule interface every rule kind implements. Everything about a kind lives on its class: its name (``kind``),
its parameters (``Rule[XParams]``), what a result measures (``criterion``, required), what it needs of the task
(``needs``: capabilities of ``audit.tasks.base.CAPABILITIES``), the kinds of shortcut it can catch
(``shortcuts``) and its phase."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Generic, Literal, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field

from ..products import Finding, Severity, Status
from .evidence import Evidence


@dataclass(frozen=True)
class Criterion:
    """What a rule result measures and which way it fails: ``direction = "above"`` fails when the value is
    above the threshold, ``"below"`` when it is below. ``condition`` names an extra requirement for failing
    (e.g. "and permutation p < 0.01"). Every finding carries one in ``details["criterion"]``, since a value and a
    threshold alone cannot tell the direction."""

    name: str  # "excess probability drop"
    unit: str  # "probability", "fraction of samples", "ROC AUC", ...
    direction: Literal["above", "below"]
    condition: str = ""

    def exceeds(self, value: float, threshold: float) -> bool:
        return value > threshold if self.direction == "above" else value < threshold

    def lead(self, value: float, threshold: float, where: str = "", digits: int = 2) -> str:
        """The first words of a message: "excess probability drop 0.28 > 0.20 for 'seven', top-left corner"."""
        over = self.exceeds(value, threshold)
        op = (">" if over else "≤") if self.direction == "above" else ("<" if over else "≥")
        text = f"{self.name} {value:.{digits}f} {op} {threshold:.{digits}f}"
        return f"{text} {where}" if where else text

    def as_dict(self) -> dict[str, str]:
        d = asdict(self)
        if not self.condition:
            d.pop("condition")
        return d


@dataclass(frozen=True)
class ShortcutClass:
    """A kind of shortcut rules look for (``fixed_position``, ``background``, …); the report lists every class the
    registered rule kinds declare, and which of them the pack left unchecked."""

    key: str
    description: str


class RuleParams(BaseModel):
    """Fields every rule entry in a pack has; each kind adds its own (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
    kind: str
    severity: Severity = "error"
    description: str = ""


P = TypeVar("P", bound=RuleParams)


class Rule(ABC, Generic[P]):
    """One rule kind: ``class X(Rule[XParams])``. ``check`` reads the evidence and returns findings; it must not
    mutate anything."""

    kind: ClassVar[str]
    title: ClassVar[str]
    Params: ClassVar[type[RuleParams]] = RuleParams  # set from the class's ``Rule[XParams]``
    # "main" rules read the audit's evidence; "comparison" rules run afterwards and read
    # evidence.comparison (the diff against a baseline results.json)
    phase: ClassVar[str] = "main"
    # what a result of this kind measures and which way it fails (required; a rule may state a more specific one
    # per result, e.g. the metric it read)
    criterion: ClassVar[Criterion]
    # task capabilities the kind reads (audit.tasks.base.CAPABILITIES); a pack asking for it on a task that lacks
    # one is refused before the model runs
    needs: ClassVar[frozenset[str]] = frozenset()
    # the kinds of shortcut this kind can catch in some configuration (``shortcut_classes``: as configured)
    shortcuts: ClassVar[tuple[ShortcutClass, ...]] = ()
    # pack entries (beyond id and kind) that show the kind's modes, at small settings: the common checks audit each on
    # a tiny set of every task the kind applies to. Strings may name {metric} (a headline metric of the task),
    # {class0} and {class1} (its first and last group)
    examples: ClassVar[tuple[dict[str, Any], ...]] = ({},)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "Params" not in cls.__dict__:
            for base in getattr(cls, "__orig_bases__", ()):
                args = [a for a in get_args(base) if isinstance(a, type) and issubclass(a, RuleParams)]
                if args:
                    cls.Params = args[0]
                    break

    def __init__(self, params: P) -> None:
        if not isinstance(getattr(type(self), "criterion", None), Criterion):
            raise TypeError(f"rule kind {self.kind!r}: {type(self).__name__} declares no criterion")
        self.params: P = params

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
        criterion: Criterion | None = None,
    ) -> Finding:
        """A finding whose status follows from ``failed`` and the rule's severity; ``criterion`` (default: the
        kind's) goes into ``details["criterion"]``.

        A NaN or infinite measured value is never a pass: it becomes an ``error`` finding.
        """
        details = {**(details or {}), "criterion": (criterion or self.criterion).as_dict()}
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
        """The rule could not be evaluated (the message says why): never a pass, blocking when its severity is
        error."""
        return Finding(
            rule=self.params.id, kind=self.kind, severity=self.params.severity, status="error", message=message
        )

    def not_applicable(self, message: str, details: dict[str, Any] | None = None) -> Finding:
        """The rule cannot apply to this audit (no ROI, no metadata, single-channel input, no right answers on a
        segmentation, …): never a pass and never blocking; the report lists what went unchecked."""
        return Finding(
            rule=self.params.id, kind=self.kind, severity=self.params.severity, status="not_applicable",
            message=f"not applicable: {message}", details={**(details or {}), "not_applicable": True},
        )

    def shortcut_classes(self) -> tuple[str, ...]:
        """The kinds of shortcut this rule, as configured, can catch (keys of its kind's ``shortcuts``); empty for
        rules that look for none."""
        return tuple(c.key for c in self.shortcuts)

