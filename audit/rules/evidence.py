"""Everything a rule may read. Rules get an Evidence and return findings; model access only via ``probe``."""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from ..concepts.result import ConceptRun
from ..datachecks import DataChecks
from ..engine.probe import ModelProbe
from ..family.result import FamilyRun
from ..products import Finding, Picks, Predictions, SkippedSample
from ..robustness.result import RobustnessRun
from ..slices.result import SlicesRun
from ..tasks.base import TaskMetrics

Scope = Literal["all", "correct", "incorrect", "picks"]


class EvaluatedRule(Protocol):
    """What a later phase reads of a rule evaluated before it (``Evidence.earlier``): its kind and parameters (a
    ``Rule``; named structurally here, since the rule interface itself reads the Evidence)."""

    kind: str
    params: Any


class NotApplicable(Exception):
    """What a rule asked of the evidence does not exist in this audit (e.g. right answers on a task that has none):
    ``evaluate`` turns it into the rule's ``not_applicable`` result with this reason."""


@dataclass(frozen=True)
class Evidence:
    classes: tuple[str, ...]
    predictions: Predictions
    metrics: TaskMetrics
    picks: Picks
    probe: ModelProbe | None
    seed: int = 0
    explainers: tuple[str, ...] = ()  # explainers configured for the report grid
    skipped: tuple[SkippedSample, ...] = ()
    n_listed: int = 0  # samples listed in the held-out set, skipped ones included
    comparison: Mapping[str, Any] | None = None  # the diff against a baseline (comparison-phase rules read it)
    data: DataChecks | None = None  # the data-checks stage's product (image properties, duplicates, leakage)
    input_problems: tuple[str, ...] = ()  # what the listing flagged and the config chose to audit anyway (a swapped
    # image_size under data.swapped_size = "finding"): evidence read in a way the data contradicts
    concepts: ConceptRun | None = None  # TCAV tests of the [concepts] stage (the concept_reliance rule reads them)
    robustness: RobustnessRun | None = None  # the [robustness] stage's measurements (the robustness rules read them)
    slices: SlicesRun | None = None  # the [slices] stage's discovered slices (slice_gap_max reads them)
    family: FamilyRun | None = None  # [[family]]: the members, their statistics and rule outcomes (family rules)
    unavailable: Mapping[str, str] = field(default_factory=dict)  # configured explainers without maps -> why
    earlier: tuple[tuple[EvaluatedRule, tuple[Finding, ...]], ...] = ()  # rules evaluated before this phase

    def rng(self, salt: str) -> np.random.Generator:
        """A generator that depends only on the audit seed and ``salt`` (e.g. the rule id)."""
        return np.random.default_rng([self.seed, zlib.crc32(salt.encode())])

    def outcome(self) -> np.ndarray:
        """(N,) whether each answer is right, as the task defines it (``task.outcome``; without a probe, the argmax
        against the labels). NotApplicable when the task has no notion of a right answer (a segmentation)."""
        if self.probe is not None:
            right = self.probe.task.outcome(self.predictions)
            if right is None:
                raise NotApplicable(f"task {self.probe.task.name!r} has no right or wrong answer per image, so scopes "
                                    "'correct' and 'incorrect' select no sample; use scope = \"all\"")
            return np.asarray(right, dtype=bool)
        return self.predictions.correct

    def class_index(self, name_or_index: str | int) -> int:
        if isinstance(name_or_index, int) or (isinstance(name_or_index, str) and name_or_index.isdigit()
                                              and name_or_index not in self.classes):
            i = int(name_or_index)
            if 0 <= i < len(self.classes):
                return i
        elif name_or_index in self.classes:
            return self.classes.index(name_or_index)
        raise KeyError(f"class {name_or_index!r} is not one of {', '.join(self.classes)}")

    def sample_ids(self, scope: Scope, n: int | None = None, salt: str = "", classes: Sequence[int] | None = None
                   ) -> list[str]:
        """Ids in data order for a scope, optionally limited to true classes and to a seeded subset of n."""
        p = self.predictions
        if scope == "all":
            mask = np.ones(p.n, dtype=bool)
        elif scope in ("correct", "incorrect"):
            right = self.outcome()
            mask = right.copy() if scope == "correct" else ~right
        elif scope == "picks":
            mask = np.isin(p.ids, np.array(self.picks.all_ids(), dtype=object))
        else:
            raise ValueError(f"unknown scope {scope!r}")
        if classes is not None:
            mask &= np.isin(p.labels, np.asarray(list(classes)))
        rows = np.flatnonzero(mask)
        if n is not None and len(rows) > n:
            rows = np.sort(self.rng(f"subset:{salt}").choice(rows, size=n, replace=False))
        return [str(s) for s in p.ids[rows]]
