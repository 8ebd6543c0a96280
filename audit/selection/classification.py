"""Pick samples for a closer look: confidently correct, confidently wrong, borderline; overall and per class."""

from __future__ import annotations

import numpy as np

from ..products import Pick, PickCategory, Picks, Predictions

CATEGORIES: tuple[PickCategory, ...] = ("correct", "incorrect", "borderline")


def _order(pred: Predictions, rows: np.ndarray, category: PickCategory) -> np.ndarray:
    """Rows sorted by the category's criterion; ties broken by data order (deterministic)."""
    conf, margin = pred.confidence[rows], pred.margin[rows]
    if category == "borderline":
        key = margin  # smallest top-1 − top-2 first
    else:
        key = -conf  # highest confidence first
    return rows[np.lexsort((rows, key))]


def _reason(category: PickCategory, conf: float, margin: float, label: str, predicted: str, rank: int,
            scope: str) -> str:
    where = "overall" if scope == "overall" else f"among true '{label}'"
    if category == "correct":
        return f"correct with confidence {conf:.3f}: #{rank} most confident correct {where}"
    if category == "incorrect":
        return f"predicted '{predicted}' (true '{label}') with confidence {conf:.3f}: #{rank} most confident error {where}"
    return f"top-1 − top-2 margin {margin:.3f}: #{rank} closest call {where}"


def _take(pred: Predictions, rows: np.ndarray, category: PickCategory, k: int, scope: str,
          classes: tuple[str, ...]) -> tuple[Pick, ...]:
    if category == "correct":
        rows = rows[pred.correct[rows]]
    elif category == "incorrect":
        rows = rows[~pred.correct[rows]]
    out = []
    for rank, r in enumerate(_order(pred, rows, category)[:k], start=1):
        lab, prd = int(pred.labels[r]), int(pred.preds[r])
        conf, mar = float(pred.confidence[r]), float(pred.margin[r])
        out.append(Pick(
            sample_id=str(pred.ids[r]), category=category, scope=scope, label=lab, pred=prd, confidence=conf,
            margin=mar, reason=_reason(category, conf, mar, classes[lab], classes[prd], rank, scope),
        ))
    return tuple(out)


def select_samples(pred: Predictions, classes: tuple[str, ...], k: int, per_class: int) -> Picks:
    """k picks per category overall and ``per_class`` per category for each true class."""
    all_rows = np.arange(pred.n)
    overall = {c: _take(pred, all_rows, c, k, "overall", classes) for c in CATEGORIES}
    by_class = {}
    for ci, name in enumerate(classes):
        rows = np.flatnonzero(pred.labels == ci)
        by_class[ci] = {c: _take(pred, rows, c, per_class, f"class:{name}", classes) for c in CATEGORIES}
    return Picks(overall=overall, per_class=by_class)
