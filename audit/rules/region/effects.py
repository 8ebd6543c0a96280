"""The measured effects of confounder_region's edits: one direction of a donor edit against its control, the
bootstrap interval of an excess, which samples a region applies to, and compact summaries for the details."""

from __future__ import annotations

import numpy as np

from ...engine.probe import ModelProbe
from ...tasks.base import Task
from .._shortcuts import rnd
from ..evidence import Evidence
from .match import Matcher
from .params import ConfounderRegionParams
from .regions import Region
from .swap import UNMATCHED, DonorPool, Edit, ImageSource, edited_scores


def bootstrap_mean(a: np.ndarray, b: np.ndarray | None, reps: int, rng: np.random.Generator
                   ) -> tuple[float, float, float]:
    """Mean of ``a`` (paired differences) or mean(a) − mean(b) (two groups), with a 95 % percentile interval."""
    if b is None:
        est = float(a.mean())
        boots = a[rng.integers(0, len(a), (reps, len(a)))].mean(1)
    else:
        est = float(a.mean() - b.mean())
        boots = a[rng.integers(0, len(a), (reps, len(a)))].mean(1) - b[rng.integers(0, len(b), (reps, len(b)))].mean(1)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return est, float(lo), float(hi)


def donor_direction(p: ConfounderRegionParams, evidence: Evidence, probe: ModelProbe, task: Task,
                     src: ImageSource, ids: list[str], reg: Region, edit: Edit, rois: list, donors: DonorPool,
                     match: tuple[Matcher, np.ndarray, float] | None, rows: np.ndarray, g: int, orig: np.ndarray,
                     direction: str, rng: np.random.Generator) -> dict | None:
    """One direction of a donor edit for group g. ``removal``: samples assigned to g get the region from a
    donor outside g (test) or in g (control); the effect is the drop of g's score. ``insertion``: samples
    assigned to other groups get it from a donor in g (test) or outside g (control); the effect is the rise
    of g's score. Returns None when no sample has both donors, and only the counts (``n`` 0, ``n_unmatched``)
    when every sample lacks a close enough donor."""
    if len(rows) == 0:
        return None
    ctx = None
    if p.match_context and match is not None:
        ctx = (match[0].describe(src.get(rows)), match[1], match[2])
    avoid = None
    if direction == "insertion":  # the control donor comes from a third group where there is one
        pr = evidence.predictions
        rows_pred = pr.index_of([ids[i] for i in rows])
        avoid = np.full(len(rows), -1)
        for h in range(len(task.groups())):
            if h != g:
                avoid[(avoid < 0) & task.members(pr, h, "predicted")[rows_pred]] = h
    other, same = donors.choose(evidence, probe, reg, [ids[i] for i in rows], g,
                                evidence.rng(f"{p.id}:{reg.key}:{g}:{direction}:donors"), p.max_roi_overlap,
                                ctx, p.match_k, avoid)
    test_d, ctrl_d = (other, same) if direction == "removal" else (same, other)
    ok = (test_d >= 0) & (ctrl_d >= 0)
    n_unmatched = int(((test_d == UNMATCHED) | (ctrl_d == UNMATCHED)).sum())
    rows, test_d, ctrl_d = rows[ok], test_d[ok], ctrl_d[ok]
    if len(rows) == 0:
        return {"direction": direction, "n": 0, "n_unmatched": n_unmatched} if n_unmatched else None
    tgt = np.full(len(rows), g)
    full_t = np.full(len(ids), -1)
    full_t[rows] = test_d
    full_c = np.full(len(ids), -1)
    full_c[rows] = ctrl_d
    test = edited_scores(probe, src, rows, reg, edit, rois, donors, full_t)
    ctrl = edited_scores(probe, src, rows, reg, edit, rois, donors, full_c)
    s0 = task.target_scores(orig[rows], tgt)
    d0 = task.decide(orig[rows], tgt)
    sign = 1.0 if direction == "removal" else -1.0  # removal: a drop of g's score; insertion: a rise
    eff_t = sign * (s0 - task.target_scores(test, tgt))
    eff_c = sign * (s0 - task.target_scores(ctrl, tgt))
    dt, dc_ = task.decide(test, tgt), task.decide(ctrl, tgt)
    flip_t = ((d0 & ~dt) if direction == "removal" else (~d0 & dt)).astype(float)
    flip_c = ((d0 & ~dc_) if direction == "removal" else (~d0 & dc_)).astype(float)
    a = (eff_t - eff_c) if p.criterion == "prob_drop" else (flip_t - flip_c)
    est, lo, hi = bootstrap_mean(a, None, p.bootstrap, rng)
    return {"direction": direction, "rows": rows, "n": len(rows), "n_unmatched": n_unmatched, "est": est,
            "lo": lo, "hi": hi,
            "effect": eff_t, "flip": flip_t, "per_sample": a, "control": float(eff_c.mean()),
            "control_flip": float(flip_c.mean())}


def judged_direction(dirs: list[dict]) -> tuple[dict, float]:
    """The direction a donor-edit cell is judged on, and the floor its failing needs above 0. A cue the model
    uses moves its score both ways, while an edit that is only out of distribution for one kind of image shows
    one way: the weaker direction (smaller excess) is judged, and the floor is the lowest interval end of all
    measured directions (one direction alone where only one could be measured)."""
    return min(dirs, key=lambda d: d["est"]), min(d["lo"] for d in dirs)


def eligible(reg: Region, rois: list[np.ndarray | None], max_overlap: float) -> np.ndarray:
    if reg.per_sample:
        return np.array([r is not None for r in rois], dtype=bool)
    if reg.mask.all():
        return np.ones(len(rois), dtype=bool)
    area = reg.mask.sum()
    return np.array([r is None or (r & reg.mask).sum() / area <= max_overlap for r in rois], dtype=bool)

def sample_mask(reg: Region, roi: np.ndarray | None) -> np.ndarray:
    if reg.per_sample:
        return ~roi if roi is not None else np.zeros_like(reg.mask)
    return reg.mask


def brief(d: dict | None) -> dict | None:
    if d is None:
        return None
    extra = {"n_unmatched": d["n_unmatched"]} if d["n_unmatched"] else {}  # left out: no close enough donor
    return {"n": d["n"], **extra, "excess": rnd(d["est"]), "ci95": [rnd(d["lo"]), rnd(d["hi"])],
            "effect": rnd(float(d["effect"].mean())), "control": rnd(d["control"]),
            "flip_rate": rnd(float(d["flip"].mean())), "control_flip_rate": rnd(d["control_flip"])}


def own_targets(task: object, pr: object, ids: list[str], rows: np.ndarray, members: dict[int, list[str]]
                 ) -> np.ndarray:
    """For samples of other groups: the group they are judged in (the first that lists them), -1 if none."""
    where: dict[str, int] = {}
    for g, ms in members.items():
        for s in ms:
            where.setdefault(s, g)
    return np.array([where.get(ids[i], -1) for i in rows], dtype=np.int64)
