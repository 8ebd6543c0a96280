"""The concept stage's product: every TCAV test of the audit with its statistics, plus the few images the report
shows (plain data; the rule and the report read it)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ConceptInfo:
    """One concept set as configured and found."""

    name: str
    folder: str
    n_images: int  # images per run (a seeded subset of set_size per run when the folder holds more)
    n_found: int  # images in the folder
    forbidden: bool
    required: bool
    groups: tuple[str, ...]  # classes / labels tested for this concept
    description: str = ""
    examples: tuple[np.ndarray, ...] = ()  # a few (h, w, 3) uint8 thumbnails for the report


@dataclass(frozen=True)
class LayerCAVs:
    """The CAV classifiers of one concept (or of the random counterpart) at one layer."""

    concept: str
    layer: str
    dim: int
    accuracy: np.ndarray  # (N,) held-out accuracy per run
    n_null: int  # runs whose classifier found no direction

    @property
    def mean_accuracy(self) -> float:
        return float(np.mean(self.accuracy))


@dataclass(frozen=True)
class ConceptTest:
    """TCAV of one concept for one class (or label) at one layer: N concept scores against N random scores."""

    concept: str
    group: str
    group_index: int
    layer: str
    n_inputs: int
    scores: np.ndarray  # (N,) TCAV score per run
    random_scores: np.ndarray  # (N,)
    t: float
    p: float  # two-sided, uncorrected
    p_corrected: float  # Bonferroni over every test of the run
    cav_accuracy: float  # mean held-out accuracy of the concept's CAV classifiers at this layer
    separable: bool  # cav_accuracy >= min_cav_accuracy
    n_zero: int = 0  # inputs whose directional derivative was exactly 0 in some run
    note: str = ""  # e.g. a degenerate t-test
    top_ids: tuple[str, ...] = ()  # class inputs whose logit rises most along the CAV (mean over runs)
    top_derivatives: tuple[float, ...] = ()

    @property
    def mean(self) -> float:
        return float(np.mean(self.scores))

    @property
    def sd(self) -> float:
        return float(np.std(self.scores, ddof=1)) if len(self.scores) > 1 else math.nan

    @property
    def random_mean(self) -> float:
        return float(np.mean(self.random_scores))

    @property
    def random_sd(self) -> float:
        return float(np.std(self.random_scores, ddof=1)) if len(self.random_scores) > 1 else math.nan

    def significant(self, alpha: float) -> bool:
        return bool(math.isfinite(self.p_corrected) and self.p_corrected < alpha)


@dataclass(frozen=True)
class ConceptRun:
    concepts: tuple[ConceptInfo, ...]
    layers: tuple[str, ...]
    runs: int  # N: random counterexample sets per concept and layer
    set_size: int
    pooling: str  # "flatten" | "mean"
    classifier: str
    random_source: str  # "held-out set" or the folder
    random_disjoint: bool  # the N random sets share no image
    min_cav_accuracy: float
    tests: tuple[ConceptTest, ...]
    cavs: tuple[LayerCAVs, ...]  # per concept and layer, the random counterpart's as "(random)"
    skipped: Mapping[str, str] = field(default_factory=dict)  # "concept / class" -> why it was not tested
    notes: tuple[str, ...] = ()
    seconds: float = 0.0
    thumbnails: Mapping[str, np.ndarray] = field(default_factory=dict)  # sample id -> (h, w, 3) uint8
    error: str = ""  # set when TCAV could not run (the rule reports it as an error)

    @property
    def m(self) -> int:
        """The number of tests Bonferroni corrects for."""
        return len(self.tests)

    def concept(self, name: str) -> ConceptInfo:
        for c in self.concepts:
            if c.name == name:
                return c
        raise KeyError(f"concept {name!r} is not one of {', '.join(c.name for c in self.concepts)}")

    def tests_of(self, concept: str, group: str | None = None) -> list[ConceptTest]:
        return [t for t in self.tests if t.concept == concept and (group is None or t.group == group)]

    def as_dict(self) -> dict[str, Any]:
        """The results.json section (unrounded; the writer rounds)."""
        return {
            "method": "TCAV (Kim et al. 2018): sign of the class logit's directional derivative along each CAV; "
                      "two-sided Student t-test of the concept's scores against random CAVs' scores; Bonferroni "
                      "over the tests",
            "layers": list(self.layers), "runs": self.runs, "set_size": self.set_size, "activations": self.pooling,
            "classifier": self.classifier, "random_source": self.random_source,
            "random_sets_disjoint": self.random_disjoint, "min_cav_accuracy": self.min_cav_accuracy,
            "n_tests": self.m, "seconds": self.seconds,
            "concepts": [{"name": c.name, "folder": c.folder, "n_images": c.n_images, "n_found": c.n_found,
                          "forbidden": c.forbidden, "required": c.required, "classes": list(c.groups),
                          "description": c.description} for c in self.concepts],
            "cav_accuracy": [{"concept": a.concept, "layer": a.layer, "dim": a.dim, "mean": a.mean_accuracy,
                              "per_run": a.accuracy, "n_null": a.n_null} for a in self.cavs],
            "tests": [{"concept": t.concept, "class": t.group, "layer": t.layer, "n_inputs": t.n_inputs,
                       "tcav": t.mean, "tcav_sd": t.sd, "random": t.random_mean, "random_sd": t.random_sd,
                       "t": t.t, "p": t.p, "p_bonferroni": t.p_corrected, "cav_accuracy": t.cav_accuracy,
                       "separable": t.separable, "scores": t.scores, "random_scores": t.random_scores,
                       "n_zero_derivative": t.n_zero, "note": t.note, "top_ids": list(t.top_ids)}
                      for t in self.tests],
            "skipped": dict(self.skipped), "error": self.error or None,
            "notes": list(self.notes),
        }
