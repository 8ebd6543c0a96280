"""The family stage's product: every member's predictions, metrics and model service, and the statistics across
members (spread, pooled out-of-fold metrics, prediction and explanation agreement, the released member against the
family, and per rule how many members fail it). ``as_dict`` is the form results.json keeps."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from ..engine.probe import ModelProbe
from ..products import Picks, Predictions, Status
from ..tasks.base import TaskMetrics
from .rows import Folds
from .stats import Flips, Spread

Role = Literal["released", "member", "ensemble"]
FAILED: tuple[Status, ...] = ("fail", "warn")  # a member "fails" a rule when its criterion is crossed


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else float(x)


@dataclass(frozen=True)
class MemberRun:
    """One member: judged on ``rows`` (prediction rows of the released model's table it was not trained on)."""

    name: str
    role: Role
    source: str  # how it was built, e.g. "factory audit.demo.model:build + seed-3.safetensors"
    digest: str  # SHA-256 of its parameters (engine/cache.model_digest)
    rows: np.ndarray
    fold: np.ndarray | None  # its out-of-fold rows, None when it names none
    answers: np.ndarray  # the task's answer on every row (per pixel for a segmentation)
    right: np.ndarray | None  # (N,) right or wrong on every row; None when the task has no such notion
    predictions: Predictions  # on ``rows``
    metrics: TaskMetrics  # on ``rows``
    picks: Picks  # its own picks on ``rows`` (what its rules read)
    probe: ModelProbe | None = field(default=None, repr=False)  # its model service (None: not built)
    values: dict[str, float] = field(default_factory=dict)  # the family's metrics (NaN: not computed)
    intervals: dict[str, tuple[float, float] | None] = field(default_factory=dict)

    @property
    def trained(self) -> bool:
        """A checkpoint of the recipe (not the ensemble of them)."""
        return self.role != "ensemble"


@dataclass(frozen=True)
class Pair:
    """Prediction agreement of two members on the rows neither was trained on."""

    a: str
    b: str
    n: int
    kappa: float
    flips: Flips


@dataclass(frozen=True)
class MapPair:
    """Explanation agreement of two members on shared picks: the mean over picks of the rank correlation and of the
    top-k overlap of their maps for the same output."""

    explainer: str
    a: str
    b: str
    n: int
    rank_correlation: float
    top_overlap: float


@dataclass(frozen=True)
class Pooled:
    """Each fold's rows predicted by the member that did not train on them, pooled."""

    members: tuple[str, ...]
    predictions: Predictions
    metrics: TaskMetrics
    values: dict[str, float]
    intervals: dict[str, tuple[float, float] | None]
    confusion: np.ndarray | None  # (K, K) counts, rows = true class, for a single-label task


@dataclass(frozen=True)
class ReleasedCheck:
    """The released member's main metric against the leave-one-out prediction interval of the other members."""

    member: str
    metric: str
    value: float
    interval: tuple[float, float] | None
    outlier: bool | None  # None: too few other members (fewer than 2) to tell
    others: int


@dataclass(frozen=True)
class MemberOutcome:
    member: str
    status: Status
    message: str
    value: float | None = None


@dataclass(frozen=True)
class RuleOutcome:
    """One pack rule evaluated on every member (and the ensemble)."""

    rule: str
    kind: str
    severity: str
    members: tuple[MemberOutcome, ...]

    def status(self, member: str) -> Status | None:
        return next((o.status for o in self.members if o.member == member), None)

    def failing(self, names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(o.member for o in self.members if o.member in names and o.status in FAILED)

    def errors(self, names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(o.member for o in self.members if o.member in names and o.status == "error")


@dataclass(frozen=True)
class FamilyRun:
    members: tuple[MemberRun, ...]
    folds: Folds
    key_metric: str
    metrics: tuple[str, ...]  # the metrics compared across members, the key metric first
    spreads: dict[str, Spread]  # across the trained members
    pairs: tuple[Pair, ...]
    maps: tuple[MapPair, ...]
    explainers: dict[str, str]  # explainer -> "" (compared) or why its maps could not be compared
    map_ids: tuple[str, ...]  # the shared picks the maps were compared on
    pooled: Pooled | None
    released: ReleasedCheck | None
    level: float
    top_fraction: float
    outcomes: tuple[RuleOutcome, ...] = ()
    comparison: dict[str, Any] | None = None  # against a baseline family (family.compare)
    notes: tuple[str, ...] = ()

    @property
    def trained(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.members if m.trained)

    @property
    def released_name(self) -> str:
        return next(m.name for m in self.members if m.role == "released")

    def member(self, name: str) -> MemberRun:
        return next(m for m in self.members if m.name == name)

    def outcome(self, rule: str) -> RuleOutcome | None:
        return next((o for o in self.outcomes if o.rule == rule), None)

    def close(self) -> None:
        """Give back the engines of every member but the released one (its engine is the audit's)."""
        for m in self.members:
            if m.role != "released" and m.probe is not None:
                m.probe.engine.close()

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (results.json ``family``)."""
        trained = self.trained
        return {
            "key_metric": self.key_metric,
            "metrics": list(self.metrics),
            "level": self.level,
            "released": self.released_name,
            "members": [{
                "name": m.name, "role": m.role, "source": m.source, "parameters_sha256": m.digest,
                "n": len(m.rows), "out_of_fold": None if m.fold is None else len(m.fold),
                "metrics": {k: _num(v) for k, v in m.values.items()},
                "intervals": {k: None if ci is None else [_num(ci[0]), _num(ci[1])] for k, ci in m.intervals.items()},
            } for m in self.members],
            "spread": {k: {"n": s.n, "mean": _num(s.mean), "sd": _num(s.sd), "t_interval": [_num(s.low), _num(s.high)],
                           "min": _num(s.minimum), "max": _num(s.maximum)} for k, s in self.spreads.items()},
            "shared_rows": len(self.folds.untrained),
            "pooled_out_of_fold": None if self.pooled is None else {
                "members": list(self.pooled.members), "n": self.pooled.predictions.n,
                "metrics": {k: _num(v) for k, v in self.pooled.values.items()},
                "intervals": {k: None if ci is None else [_num(ci[0]), _num(ci[1])]
                              for k, ci in self.pooled.intervals.items()},
                "confusion": None if self.pooled.confusion is None else self.pooled.confusion.tolist()},
            "agreement": [{"a": p.a, "b": p.b, "n": p.n, "kappa": _num(p.kappa), "changed": p.flips.changed,
                           "a_right_b_wrong": p.flips.a_right_b_wrong, "a_wrong_b_right": p.flips.a_wrong_b_right}
                          for p in self.pairs],
            "explanation_agreement": {
                "top_fraction": self.top_fraction, "samples": list(self.map_ids),
                "explainers": [{"name": k, "status": "ok" if not why else "unavailable", "reason": why}
                               for k, why in self.explainers.items()],
                "pairs": [{"explainer": p.explainer, "a": p.a, "b": p.b, "n": p.n,
                           "rank_correlation": _num(p.rank_correlation), "top_overlap": _num(p.top_overlap)}
                          for p in self.maps]},
            "released_check": None if self.released is None else {
                "member": self.released.member, "metric": self.released.metric, "value": _num(self.released.value),
                "prediction_interval": None if self.released.interval is None
                else [_num(self.released.interval[0]), _num(self.released.interval[1])],
                "outlier": self.released.outlier, "other_members": self.released.others},
            "rules": [{"rule": o.rule, "kind": o.kind, "severity": o.severity, "k": len(o.failing(trained)),
                       "of": len(trained), "failing": list(o.failing(trained)), "errors": list(o.errors(trained)),
                       "members": [{"member": x.member, "status": x.status, "message": x.message,
                                    "value": _num(x.value)} for x in o.members]} for o in self.outcomes],
            "comparison": self.comparison,
            "notes": list(self.notes),
        }
