"""What slice discovery reads: plain per-sample arrays, checked once.

Every task reduces to the same inputs: one embedding row per sample (the model's penultimate features; optionally
a second embedding such as a model-independent image descriptor), and one per-sample value of the task's metric
(1/0 correct for a classifier, per-image Dice for segmentation, one label's correctness for a multi-label set).
Labels and predicted probabilities are optional: with them, the mixture models them as Domino does (categorical
terms); without them it models the per-sample metric alone (a Bernoulli term on the error).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

from ..errors import DataError


class SliceInputError(DataError):
    """The arrays handed to slice discovery are inconsistent (shape, range, missing values)."""


@dataclass(frozen=True)
class SliceInputs:
    """Per-sample arrays of one held-out set (N samples).

    embeddings      (N, D) float: the model's penultimate features
    metric          (N,) float: the task's per-sample metric (accuracy 1/0, Dice, ...)
    metric_name     what ``metric`` is, for messages and reports
    higher_is_better  True for accuracy / Dice, False for an error or a loss
    labels          (N,) int class index or (N, C) soft/one-hot rows; optional
    probs           (N, C) predicted probabilities (rows sum to 1); optional, needs labels' C
    extra_embedding (N, D2) a second embedding; optional
    """

    embeddings: np.ndarray
    metric: np.ndarray
    metric_name: str = "accuracy"
    higher_is_better: bool = True
    labels: np.ndarray | None = None
    probs: np.ndarray | None = None
    extra_embedding: np.ndarray | None = None

    def __post_init__(self) -> None:
        z = _matrix(self.embeddings, "embeddings")
        n = len(z)
        if n < 4:
            raise SliceInputError(f"embeddings: {n} samples; slice discovery needs at least 4")
        object.__setattr__(self, "embeddings", z)
        m = np.asarray(self.metric, dtype=np.float64)
        if m.shape != (n,):
            raise SliceInputError(f"metric: shape {m.shape}, expected ({n},) (one value per embedding row)")
        _finite(m, "metric")
        object.__setattr__(self, "metric", m)
        if self.extra_embedding is not None:
            e = _matrix(self.extra_embedding, "extra_embedding")
            if len(e) != n:
                raise SliceInputError(f"extra_embedding: {len(e)} rows, expected {n}")
            object.__setattr__(self, "extra_embedding", e)
        if self.labels is not None:
            object.__setattr__(self, "labels", _label_rows(self.labels, n, self.probs))
        if self.probs is not None:
            if self.labels is None:
                raise SliceInputError("probs given without labels: the prediction term needs the label classes")
            p = _matrix(self.probs, "probs")
            if p.shape != self.labels.shape:
                raise SliceInputError(f"probs: shape {p.shape}, expected {self.labels.shape} (like the labels)")
            if (p < -1e-9).any() or not np.allclose(p.sum(1), 1.0, atol=1e-4):
                raise SliceInputError("probs: rows must be non-negative and sum to 1 (softmax outputs)")
            object.__setattr__(self, "probs", np.clip(p, 0.0, 1.0))

    @property
    def n(self) -> int:
        return len(self.embeddings)

    @property
    def binary_metric(self) -> bool:
        """The metric takes only the values 0 and 1 (correct / wrong): proportions get Wilson intervals."""
        return bool(np.isin(self.metric, (0.0, 1.0)).all())

    def badness(self) -> np.ndarray:
        """The per-sample error in [0, 1] the mixture's Bernoulli term models: 1 - metric (or the metric itself when
        lower is better); a metric outside [0, 1] (a loss) is replaced by its mid-rank quantile."""
        m = self.metric if not self.higher_is_better else 1.0 - self.metric
        if m.min() < 0.0 or m.max() > 1.0:
            m = (rankdata(m) - 0.5) / len(m)
        return m

    @classmethod
    def from_classification(cls, embeddings: np.ndarray, labels: np.ndarray, probs: np.ndarray,
                            extra_embedding: np.ndarray | None = None) -> SliceInputs:
        """A single-label classifier: metric = 1 where argmax(probs) equals the label (accuracy)."""
        y = np.asarray(labels)
        p = np.asarray(probs, dtype=np.float64)
        if y.ndim != 1 or p.ndim != 2 or len(y) != len(p):
            raise SliceInputError(f"labels {y.shape} and probs {p.shape}: expected (N,) class indices and (N, C)")
        correct = (p.argmax(1) == y).astype(np.float64)
        return cls(embeddings, correct, "accuracy", True, y, p, extra_embedding)


    @classmethod
    def from_label(cls, embeddings: np.ndarray, truth: np.ndarray, score: np.ndarray, threshold: float = 0.5,
                   extra_embedding: np.ndarray | None = None) -> SliceInputs:
        """One label of a binary or multi-label model: truth (N,) 0/1, score (N,) the label's probability; metric
        = 1 where ``score >= threshold`` agrees with the truth; the label term is the truth and the prediction
        term (1 - score, score)."""
        t = np.asarray(truth)
        p = np.asarray(score, dtype=np.float64)
        if t.ndim != 1 or p.shape != t.shape or not np.isin(t, (0, 1)).all():
            raise SliceInputError(f"truth {t.shape} and score {p.shape}: expected (N,) 0/1 values and (N,) scores")
        if (p < 0).any() or (p > 1).any():
            raise SliceInputError("score: a label's probability must lie in [0, 1]")
        correct = ((p >= threshold) == (t == 1)).astype(np.float64)
        return cls(embeddings, correct, "accuracy", True, t.astype(np.int64), np.stack([1.0 - p, p], axis=1),
                   extra_embedding)


def _matrix(a: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(a, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] == 0:
        raise SliceInputError(f"{name}: shape {x.shape}, expected (N, D) with D >= 1")
    _finite(x, name)
    return x


def _finite(x: np.ndarray, name: str) -> None:
    bad = ~np.isfinite(x)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise SliceInputError(f"{name}: non-finite value in row {row}")


def _label_rows(labels: np.ndarray, n: int, probs: np.ndarray | None) -> np.ndarray:
    """Class indices (N,) -> one-hot (N, C) with C from probs when given; soft rows (N, C) are checked."""
    y = np.asarray(labels)
    if y.ndim == 1:
        if len(y) != n:
            raise SliceInputError(f"labels: {len(y)} values, expected {n}")
        if not np.issubdtype(y.dtype, np.integer):
            if not np.all(np.mod(y, 1) == 0):
                raise SliceInputError("labels: 1-D labels must be integer class indices")
            y = y.astype(np.int64)
        c = int(np.asarray(probs).shape[1]) if probs is not None and np.ndim(probs) == 2 else int(y.max()) + 1
        if y.min() < 0 or y.max() >= c:
            raise SliceInputError(f"labels: class index {int(y.min() if y.min() < 0 else y.max())} outside 0..{c - 1}")
        return np.eye(c)[y]
    rows = _matrix(y, "labels")
    if len(rows) != n:
        raise SliceInputError(f"labels: {len(rows)} rows, expected {n}")
    if (rows < 0).any() or not np.allclose(rows.sum(1), 1.0, atol=1e-4):
        raise SliceInputError("labels: 2-D labels must be non-negative rows summing to 1")
    return rows
