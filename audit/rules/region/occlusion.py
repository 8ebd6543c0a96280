"""Occlusion cells of confounder_region (``mean``, ``blur``, ``noise``, ``greyscale``): the region replaced from the
image itself, once per sample, and judged against the same edit on the other groups' samples (the effect on g minus
the mean effect on the others, with a 95 % bootstrap interval). These are fixed-sample tests (one edit per sample,
every sample of the region): no sequential looks."""

from __future__ import annotations

import numpy as np
import torch

from .edits import Request, score_requests
from .plan import Setup, Test


def bootstrap_mean(a: np.ndarray, b: np.ndarray, reps: int, rng: np.random.Generator
                   ) -> tuple[float, float, float]:
    """mean(a) − mean(b) (two groups) with a 95 % percentile interval."""
    est = float(a.mean() - b.mean())
    boots = a[rng.integers(0, len(a), (reps, len(a)))].mean(1) - b[rng.integers(0, len(b), (reps, len(b)))].mean(1)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return est, float(lo), float(hi)


def occluded_scores(setup: Setup, test: Test, ok_rows: np.ndarray, gen: torch.Generator | None) -> np.ndarray:
    """Scores of every eligible sample with the region occluded (NaN rows elsewhere); the number of passes is
    the number of eligible rows."""
    rows = np.flatnonzero(ok_rows)
    out = np.full((len(setup.ids), len(setup.probe.task.classes)), np.nan)
    if len(rows):
        out[rows] = score_requests(setup.probe, setup.src, None, setup.masks,
                                   [Request(test.edit, test.region, rows)], gen)[0]
    return out


def occlusion_cell(setup: Setup, g: int, rows: np.ndarray, ok_rows: np.ndarray, sc: np.ndarray,
                   orig: np.ndarray, criterion: str, reps: int, rng: np.random.Generator) -> dict | None:
    """The figures of cell (region, g) from the occluded scores ``sc``; None when no other group can be compared."""
    task = setup.probe.task
    tgt = np.full(len(rows), g)
    s0 = task.target_scores(orig[rows], tgt)
    d0 = task.decide(orig[rows], tgt)
    drop_t = s0 - task.target_scores(sc[rows], tgt)
    flip_t = (d0 & ~task.decide(sc[rows], tgt)).astype(float)
    others = np.flatnonzero(ok_rows & ~np.isin(np.arange(len(setup.ids)), setup.members[g]))
    o_tgt = setup.own_group[others]
    keep = (o_tgt >= 0) & (o_tgt != g)
    others, o_tgt = others[keep], o_tgt[keep]
    if len(others) == 0:
        return None
    so = task.target_scores(orig[others], o_tgt)
    drop_o = so - task.target_scores(sc[others], o_tgt)
    flip_o = (task.decide(orig[others], o_tgt) & ~task.decide(sc[others], o_tgt)).astype(float)
    a, b = (drop_t, drop_o) if criterion == "prob_drop" else (flip_t, flip_o)
    est, lo, hi = bootstrap_mean(a, b, reps, rng)
    return {"rows": rows, "n": len(rows), "value": est, "lo": lo, "hi": hi, "floor": lo,
            "drop": float(drop_t.mean()), "flip": float(flip_t.mean()), "n_flipped": int(flip_t.sum()),
            "per_sample": a - float(b.mean()),
            "control": {"prob_drop": float(drop_o.mean()), "flip_rate": float(flip_o.mean()), "n": len(others)},
            "inconclusive": False, "passes": 0}

