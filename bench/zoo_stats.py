"""Rates with Wilson 95 % intervals and ROC summaries for the shortcut zoo's tables."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (math.nan, math.nan)
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (max(0.0, c - h), min(1.0, c + h))


def rate(k: int, n: int) -> dict[str, Any]:
    lo, hi = wilson(k, n)
    return {"k": k, "n": n, "rate": (k / n) if n else None, "ci95": [lo, hi]}


def fmt_rate(r: dict[str, Any], digits: int = 0) -> str:
    if not r["n"]:
        return "–"
    f = f"{{:.{digits}f}}"
    lo, hi = (f.format(100 * v) for v in r["ci95"])
    return f"{r['k']}/{r['n']} ({f.format(100 * r['rate'])} %, {lo}–{hi})"


def roc(pos: list[float], neg: list[float]) -> dict[str, Any]:
    """ROC AUC (ties count one half) and the curve's points (threshold, TPR, FPR), flagging value > threshold."""
    if not pos or not neg:
        return {"auc": None, "points": []}
    p, n = np.asarray(pos), np.asarray(neg)
    auc = float(((p[:, None] > n[None, :]).sum() + 0.5 * (p[:, None] == n[None, :]).sum()) / (len(p) * len(n)))
    ts = np.unique(np.concatenate([p, n]))
    pts = [{"threshold": float(t), "tpr": float((p > t).mean()), "fpr": float((n > t).mean())} for t in ts]
    return {"auc": auc, "points": pts, "max_clean": float(n.max()), "min_reliant": float(p.min())}
