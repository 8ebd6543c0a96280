"""The plain products stages hand each other: predictions, picks, attribution maps, findings (frozen dataclasses; no
rendering, no model access)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

Status = Literal["pass", "warn", "fail", "error", "not_applicable"]  # not_applicable: never a pass, never blocking
Severity = Literal["error", "warning"]
PickCategory = Literal["correct", "incorrect", "borderline"]


@dataclass(frozen=True)
class Predictions:
    """Model outputs on the held-out set, one row per sample (row order = data order)."""

    ids: np.ndarray  # (N,) str
    labels: np.ndarray  # (N,) int64 index into classes, or (N, K) 0/1 for a multi-label task
    probs: np.ndarray  # (N, K) float64 task scores (softmax of the logits, sigmoids, …)
    metadata: pd.DataFrame  # (N, M) extra manifest columns, index 0..N-1
    features: np.ndarray | None = None  # (N, D) float32, penultimate-layer features when gathered
    decisions: np.ndarray | None = None  # the task's answers when not the argmax: (N,) at a threshold, (N, K) 0/1
    dense: np.ndarray | None = None  # per-pixel answers at input resolution (N, H, W), e.g. a segmentation
    dense_truth: np.ndarray | None = None  # the per-pixel truth they are scored against (N, H, W)

    def __post_init__(self) -> None:
        n = len(self.ids)
        if self.labels.shape[:1] != (n,) or self.labels.ndim > 2 or self.probs.ndim != 2 or self.probs.shape[0] != n:
            raise ValueError("Predictions arrays are not aligned")
        if self.decisions is not None and self.decisions.shape != self.labels.shape:
            raise ValueError("Predictions decisions do not match the labels' shape")

    @property
    def n(self) -> int:
        return len(self.ids)

    @property
    def num_classes(self) -> int:
        return int(self.probs.shape[1])

    @property
    def preds(self) -> np.ndarray:
        """The model's answer per sample: the task's decisions where set (a threshold), else the argmax."""
        return self.decisions if self.decisions is not None else self.probs.argmax(axis=1)

    @property
    def confidence(self) -> np.ndarray:
        return self.probs.max(axis=1)

    @property
    def margin(self) -> np.ndarray:
        """Top-1 minus top-2 probability (0 for a single-class output)."""
        if self.num_classes < 2:
            return np.zeros(self.n)
        top2 = np.sort(self.probs, axis=1)[:, -2:]
        return top2[:, 1] - top2[:, 0]

    @property
    def correct(self) -> np.ndarray:
        """(N,) whether the answer is right (for multi-label: every label right)."""
        right = self.preds == self.labels
        return right.all(axis=1) if right.ndim == 2 else right

    def index_of(self, ids: Sequence[str]) -> np.ndarray:
        """Row positions of the given sample ids (KeyError names an unknown id)."""
        lookup = {sid: i for i, sid in enumerate(self.ids.tolist())}
        return np.array([lookup[s] for s in ids], dtype=np.int64)


@dataclass(frozen=True)
class Pick:
    """One sample chosen for a closer look, with the reason it was chosen."""

    sample_id: str
    category: PickCategory
    scope: str  # "overall" or "class:<name>"
    label: int
    pred: int
    confidence: float
    margin: float
    reason: str
    target: int | None = None  # the output to explain for this pick (a label); None: the task's default target
    label_name: str = ""  # how the truth reads when it is not classes[label] (a multi-label 0/1)
    predicted_name: str = ""


@dataclass(frozen=True)
class Picks:
    overall: Mapping[PickCategory, tuple[Pick, ...]]
    per_class: Mapping[int, Mapping[PickCategory, tuple[Pick, ...]]]

    def all_ids(self) -> tuple[str, ...]:
        """Every picked id once, in a stable order (overall first, then per class)."""
        seen: dict[str, None] = {}
        for group in self.overall.values():
            for p in group:
                seen.setdefault(p.sample_id)
        for cats in self.per_class.values():
            for group in cats.values():
                for p in group:
                    seen.setdefault(p.sample_id)
        return tuple(seen)

    def all_items(self) -> tuple[tuple[str, int | None], ...]:
        """Every (sample id, target) once, in the order of ``all_picks``: a sample picked for two labels is
        explained for each."""
        return tuple(dict.fromkeys((p.sample_id, p.target) for p in self.all_picks()))

    def all_picks(self) -> tuple[Pick, ...]:
        out = [p for group in self.overall.values() for p in group]
        out += [p for cats in self.per_class.values() for group in cats.values() for p in group]
        return tuple(out)


@dataclass(frozen=True)
class AttributionSet:
    """Maps of one explainer for a set of samples, at model-input resolution (n, H, W) float32."""

    explainer: str
    ids: tuple[str, ...]
    targets: np.ndarray  # (n,) class index explained
    maps: np.ndarray  # (n, H, W)
    signed: bool

    def get(self, sample_id: str, target: int | None = None) -> np.ndarray:
        """The map of ``sample_id`` (for ``target`` when the set explains one sample for several outputs)."""
        for i, (sid, t) in enumerate(zip(self.ids, self.targets, strict=True)):
            if sid == sample_id and (target is None or int(t) == target):
                return self.maps[i]
        raise KeyError(f"no map of {sample_id!r}" + (f" for output {target}" if target is not None else ""))


@dataclass(frozen=True)
class Finding:
    """Result of one rule (or one part of a rule) on the evidence."""

    rule: str  # rule id from the pack
    kind: str  # rule kind (registry name)
    severity: Severity
    status: Status
    message: str
    value: float | None = None
    threshold: float | None = None
    sample_ids: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)  # JSON-safe extra figures

    @property
    def blocking(self) -> bool:
        """True when this finding stops a release (an error-severity rule failed or could not run)."""
        return self.severity == "error" and self.status in ("fail", "error")


@dataclass(frozen=True)
class SkippedSample:
    path: str
    reason: str
