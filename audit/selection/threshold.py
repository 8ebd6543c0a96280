"""Picks relative to an operating threshold (binary and multi-label tasks), label by label.

correct: the most confident right answers (furthest from the threshold on the right side); incorrect: false
negatives first (the most confident misses: lowest score among positives), then false positives (highest score
among negatives) — a screening model's misses matter most; borderline: closest to the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..products import Pick, PickCategory

CATEGORIES: tuple[PickCategory, ...] = ("correct", "incorrect", "borderline")


@dataclass(frozen=True)
class LabelView:
    """One label's scores as a pick list sees them."""

    name: str
    target: int  # the output explained for this label
    y: np.ndarray  # (N,) 0/1 truth
    s: np.ndarray  # (N,) probability of the label
    threshold: float
    negative: str = "no"  # how a 0 reads (binary: the negative class's name)
    positive: str = "yes"
    unit: str = "probability"  # what ``s`` is ("anomaly score": any real)
    span: tuple[float, float] = (0.0, 1.0)  # the range of ``s`` (misses sort before false alarms on any scale)


def ranked(v: LabelView, rows: np.ndarray, category: PickCategory) -> list[tuple[int, float]]:
    """(row, sort key) of ``rows`` in the category's order (ties by data order)."""
    y, s, t = v.y[rows], v.s[rows], v.threshold
    decided = s >= t
    if category == "correct":
        keep = decided == (y == 1)
        key = -np.abs(s - t)
    elif category == "incorrect":
        keep = decided != (y == 1)
        # misses first: a missed positive sorts before any false alarm, each by how far it is on the wrong side
        lo, hi = v.span
        key = np.where(y == 1, -2.0 + (s - lo) / ((hi - lo) or 1.0), -np.abs(s - t) / ((hi - lo) or 1.0))
    else:
        keep = np.ones(len(rows), dtype=bool)
        key = np.abs(s - t)
    r, k = rows[keep], key[keep]
    order = np.lexsort((r, k))
    return [(int(r[i]), float(k[i])) for i in order]


def _reason(v: LabelView, category: PickCategory, row: int, rank: int, where: str) -> str:
    s, t, y = float(v.s[row]), v.threshold, int(v.y[row])
    label = f"'{v.name}' probability {s:.3f} (threshold {t:.3f})" if v.unit == "probability" \
        else f"{v.unit} {s:.4g} (threshold {t:.4g})"
    if category == "correct":
        return f"{label}, truly {v.positive if y else v.negative}: #{rank} most confident right answer {where}"
    if category == "incorrect":
        kind = "missed (false negative)" if y else "false alarm (false positive)"
        return f"{label}: {kind}, #{rank} most confident error {where}"
    return f"{label}: #{rank} closest to the threshold {where}"


def make_pick(v: LabelView, category: PickCategory, row: int, rank: int, scope: str, sample_id: str,
              where: str) -> Pick:
    decided = int(v.s[row] >= v.threshold)
    truth = int(v.y[row])
    return Pick(sample_id=sample_id, category=category, scope=scope, label=truth, pred=decided,
                confidence=float(v.s[row]), margin=float(abs(v.s[row] - v.threshold)),
                reason=_reason(v, category, row, rank, where), target=v.target,
                label_name=v.positive if truth else v.negative, predicted_name=v.positive if decided else v.negative)


def take(v: LabelView, ids: np.ndarray, rows: np.ndarray, category: PickCategory, k: int, scope: str,
         where: str) -> tuple[Pick, ...]:
    return tuple(make_pick(v, category, r, rank, scope, str(ids[r]), where)
                 for rank, (r, _) in enumerate(ranked(v, rows, category)[:k], start=1))
