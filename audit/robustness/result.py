"""The robustness stage's product: the task's metric under corruptions, robust accuracy under attack, OOD
separation, each with what the report draws (example images, score samples), and the JSON record results.json
keeps (``as_dict``; figures and images stay out of it)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .ce import CorruptionErrors
from .masking import MaskingVerdict, RobustAccuracy
from .stats import Separation


def _ci(ci: tuple[float, float] | None) -> list[float] | None:
    return None if ci is None else [float(ci[0]), float(ci[1])]


@dataclass(frozen=True)
class Value:
    """A metric value with its 95 % interval (None where the task's metric states none) and the samples behind it."""

    value: float
    ci: tuple[float, float] | None
    n: int

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "ci95": _ci(self.ci), "n": self.n}


@dataclass(frozen=True)
class Cell:
    """The metric under one corruption at one severity, overall and per group (class or label)."""

    corruption: str
    severity: int
    overall: Value
    groups: tuple[tuple[str, Value], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"corruption": self.corruption, "severity": self.severity, **self.overall.as_dict(),
                "error": 1.0 - self.overall.value,
                "per_group": [{"group": g, **v.as_dict()} for g, v in self.groups]}


@dataclass(frozen=True)
class Example:
    """One sample drawn at each severity of one corruption (images (H, W, 3) in [0, 1], clean first) with the
    model's answer on each."""

    sample_id: str
    corruption: str
    label: str
    images: tuple[np.ndarray, ...]
    answers: tuple[str, ...]


@dataclass(frozen=True)
class CorruptionRun:
    metric: str  # the task's key metric (Task.key_metric)
    n: int  # samples corrupted
    clean: Value  # the metric on the same samples, uncorrupted (from the scoring pass)
    clean_groups: tuple[tuple[str, Value], ...]
    names: tuple[str, ...]
    severities: tuple[int, ...]
    cells: tuple[Cell, ...]
    sources: dict[str, str]  # corruption -> the definition it follows (and how it departs from it)
    examples: tuple[Example, ...] = ()
    versus_baseline: CorruptionErrors | None = None
    baseline_note: str = ""  # why no comparison was made, when a baseline was given
    seconds: float = 0.0

    def cell(self, corruption: str, severity: int) -> Cell | None:
        return next((c for c in self.cells if c.corruption == corruption and c.severity == severity), None)

    def errors(self) -> dict[str, list[float]]:
        """corruption -> 1 - metric at each severity (the CE inputs)."""
        return {name: [1.0 - c.overall.value for c in self.cells if c.corruption == name] for name in self.names}

    def mean(self, corruption: str | None = None) -> float:
        vals = [c.overall.value for c in self.cells if corruption is None or c.corruption == corruption]
        ok = [v for v in vals if math.isfinite(v)]
        return float(np.mean(ok)) if ok else float("nan")

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "metric": self.metric, "n": self.n, "clean": self.clean.as_dict(),
            "clean_per_group": [{"group": g, **v.as_dict()} for g, v in self.clean_groups],
            "names": list(self.names), "severities": list(self.severities),
            "cells": [c.as_dict() for c in self.cells],
            "mean": self.mean(), "mean_per_corruption": {n: self.mean(n) for n in self.names},
            "sources": dict(self.sources),
        }
        if self.versus_baseline is not None:
            v = self.versus_baseline
            out["versus_baseline"] = {"ce": v.ce, "relative_ce": v.relative_ce, "mce": v.mce,
                                      "relative_mce": v.relative_mce, "undefined": list(v.undefined)}
        if self.baseline_note:
            out["baseline_note"] = self.baseline_note
        return out


@dataclass(frozen=True)
class AdversarialExample:
    sample_id: str
    label: str
    eps: float
    clean: np.ndarray  # (H, W, 3) in [0, 1]
    adversarial: np.ndarray
    answer: str  # the model's answer on the adversarial image
    broken: bool


@dataclass(frozen=True)
class AdversarialRun:
    attack: str
    norm: str
    steps: int
    step_size: float | None
    restarts: int
    n: int
    results: tuple[RobustAccuracy, ...]
    masking: MaskingVerdict | None
    status: str  # "measured" | "not_measurable" | "not_applicable"
    reason: str
    examples: tuple[AdversarialExample, ...] = ()
    seconds: float = 0.0

    def at(self, eps: float) -> RobustAccuracy | None:
        return next((r for r in self.results if math.isclose(r.eps, eps, rel_tol=1e-6, abs_tol=1e-12)), None)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"attack": self.attack, "norm": self.norm, "steps": self.steps,
                               "step_size": self.step_size, "restarts": self.restarts, "n": self.n,
                               "status": self.status, "reason": self.reason}
        if self.masking is not None:
            m = self.masking
            out["masking_checks"] = {"status": m.status, "n": m.n, "eps": list(m.eps), "accuracy": list(m.accuracy),
                                     "checks": [{"name": c.name, "passed": c.passed, "detail": c.detail}
                                                for c in m.checks]}
        out["results"] = [{"eps": r.eps, "status": r.status, "accuracy": r.accuracy, "ci95": _ci(r.interval),
                           "attacked_accuracy": r.attacked_accuracy, "n": r.n, "clean_correct": r.clean_correct,
                           "robust_correct": r.robust_correct} for r in self.results]
        return out


@dataclass(frozen=True)
class OODResult:
    detector: str
    ood_set: str
    separation: Separation

    def as_dict(self) -> dict[str, Any]:
        s = self.separation
        return {"detector": self.detector, "set": self.ood_set, "auroc": s.auroc, "auroc_ci95": _ci(s.auroc_interval),
                "fpr95": s.fpr95, "fpr95_ci95": _ci(s.fpr95_interval), "fpr_convention": s.fpr_convention,
                "n_id": s.n_id, "n_ood": s.n_ood}


@dataclass(frozen=True)
class OODRun:
    n_id: int
    n_fit: int
    fit: str  # how mahalanobis / knn were fitted
    sets: dict[str, str]  # set name -> where its images came from
    results: tuple[OODResult, ...]
    skipped: dict[str, str]  # detector or set -> why it was not scored
    status: str  # "measured" | "not_applicable"
    reason: str = ""
    scores: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # detector -> set ("in" too) -> scores
    seconds: float = 0.0

    def result(self, detector: str, ood_set: str) -> OODResult | None:
        return next((r for r in self.results if r.detector == detector and r.ood_set == ood_set), None)

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "reason": self.reason, "n_id": self.n_id, "n_fit": self.n_fit, "fit": self.fit,
                "sets": dict(self.sets), "results": [r.as_dict() for r in self.results],
                "skipped": dict(self.skipped)}


@dataclass(frozen=True)
class RobustnessRun:
    """What the robustness stage measured (a part is None when [robustness] did not ask for it)."""

    seed: int
    corruptions: CorruptionRun | None = None
    adversarial: AdversarialRun | None = None
    ood: OODRun | None = None
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"seed": self.seed}
        for name in ("corruptions", "adversarial", "ood"):
            part = getattr(self, name)
            if part is not None:
                out[name] = part.as_dict()
        out["notes"] = list(self.notes)
        return out
