"""AuditResult: the typed products of every stage of one audit (plain data; rendering lives in ``report/``)."""

from __future__ import annotations

from dataclasses import dataclass

from .compare.stage import Comparison
from .concepts.result import ConceptRun
from .config import AuditConfig
from .datachecks import DataChecks
from .engine.predict import Scored
from .family.result import FamilyRun
from .inputs import Inputs
from .loading.model import LoadedModel
from .maps.explain import Explanations
from .products import Finding, Picks, Predictions, SkippedSample
from .provenance import Provenance
from .robustness.result import RobustnessRun
from .rules.pack import RulePack
from .slices.result import SlicesRun
from .tasks.base import Task, TaskMetrics
from .timing import Timings
from .views.stage import Views


@dataclass(frozen=True)
class AuditResult:
    config: AuditConfig
    inputs: Inputs
    model: LoadedModel
    scored: Scored
    metrics: TaskMetrics
    picks: Picks
    explanations: Explanations
    findings: tuple[Finding, ...]
    comparison: Comparison | None
    views: Views
    verdict: str  # "pass" | "fail"
    provenance: Provenance
    concepts: ConceptRun | None = None  # TCAV tests of [concepts]
    datachecks: DataChecks | None = None  # data-level confounder checks (properties, duplicates, leakage)
    robustness: RobustnessRun | None = None  # [robustness]: corruptions, attacks, OOD detection
    slices: SlicesRun | None = None  # [slices]: failure slices discovered on the model's features
    timings: Timings | None = None  # wall/CPU seconds and model passes per stage (timings.json; run-dependent)
    family: FamilyRun | None = None  # [[family]]: the members, the statistics across them, their rule outcomes

    @property
    def task(self) -> Task:
        return self.inputs.task

    @property
    def classes(self) -> tuple[str, ...]:
        return self.inputs.classes

    @property
    def pack(self) -> RulePack:
        return self.inputs.pack

    @property
    def predictions(self) -> Predictions:
        return self.scored.predictions

    @property
    def skipped(self) -> tuple[SkippedSample, ...]:
        return self.scored.skipped

    @property
    def n_listed(self) -> int:
        return len(self.inputs.heldout.records)
