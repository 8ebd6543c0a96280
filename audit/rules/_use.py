"""Does the model *use* an attribute (a metadata column, an image property), beyond what the label explains?

A shortcut cue v for group g pushes the model's evidence for g up whatever the sample's true class is: within
*every* true class, samples with v get a higher g score than samples without. A merely harder subgroup moves
the evidence the other way in g's own class (its true-class score drops) and an attribute the model ignores
moves nothing. So the statistic for (value v, group g) is

    S(v, g) = min over true classes c of  mean(score_g | c, v) − mean(score_g | c, not v)

over the classes with at least ``min_n`` samples on both sides (two such classes at least), and the attribute's
statistic is the largest S over its values and the groups. Its p-value comes from shuffling the attribute
within each true class (the label's own association with the attribute is kept), one-sided, with the same
shuffles for every value, so the maximum is corrected for them; groups are Bonferroni-combined when their
strata differ (multi-label).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class UseResult:
    shift: float | None  # max S(v, g); None when no (v, g) has two judged classes
    value: int | None  # the attribute code and group of the max
    group: int | None
    p_value: float | None
    per_class: dict[int, float]  # stratum -> mean difference for the best (v, g)
    n_strata: int


def _strata_means(codes: np.ndarray, strata: np.ndarray, y: np.ndarray, V: int, S: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Sums of y and counts per (stratum, value): arrays (..., S, V) for codes (..., n)."""
    lead = codes.shape[:-1]
    P = int(np.prod(lead)) if lead else 1
    flat_codes = codes.reshape(P, -1)
    idx = (np.arange(P)[:, None] * (S * V) + strata[None, :] * V + flat_codes).ravel()
    cnt = np.bincount(idx, minlength=P * S * V).reshape(*lead, S, V).astype(float)
    tot = np.bincount(idx, weights=np.broadcast_to(y, flat_codes.shape).ravel(), minlength=P * S * V)
    return tot.reshape(*lead, S, V), cnt


def _shift(codes: np.ndarray, strata: np.ndarray, y: np.ndarray, V: int, S: int, min_n: int
           ) -> tuple[np.ndarray, np.ndarray]:
    """For every value v: min over judged strata of mean(y | s, v) − mean(y | s, not v); -inf where fewer than
    two strata are judged. Returns (min shift (..., V), per-stratum differences (..., S, V))."""
    tot, cnt = _strata_means(codes, strata, y, V, S)
    all_tot, all_cnt = tot.sum(-1, keepdims=True), cnt.sum(-1, keepdims=True)
    rest_cnt = all_cnt - cnt
    ok = (cnt >= min_n) & (rest_cnt >= min_n)
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = tot / np.where(cnt > 0, cnt, 1) - (all_tot - tot) / np.where(rest_cnt > 0, rest_cnt, 1)
    masked = np.where(ok, diff, np.inf)
    m = masked.min(axis=-2)
    m = np.where(ok.sum(axis=-2) >= 2, m, -np.inf)
    return m, diff


def consistent_shift(codes: np.ndarray, scores: np.ndarray, strata_per_group: list[np.ndarray], min_n: int,
                     n_perm: int, rng: np.random.Generator) -> UseResult:
    """``codes`` (n,) attribute codes 0..V-1; ``scores`` (n, G) the model's score per group; ``strata_per_group``:
    the true-class stratum of each sample, one array shared by every group (multiclass) or one per group."""
    V = int(codes.max()) + 1 if len(codes) else 0
    G = scores.shape[1]
    shared = len(strata_per_group) == 1
    perms: dict[int, np.ndarray] = {}
    found: list[tuple[float, int, int, dict[int, float], np.ndarray]] = []
    for g in range(G):
        strata = strata_per_group[0 if shared else g]
        S = int(strata.max()) + 1
        m, diff = _shift(codes, strata, scores[:, g], V, S, min_n)
        if not np.isfinite(m).any():
            continue
        v = int(np.argmax(m))
        key = 0 if shared else g
        if key not in perms:  # shuffles within strata (shared by every group when the strata are shared)
            order = np.argsort(strata, kind="stable")
            bounds = np.flatnonzero(np.diff(strata[order])) + 1
            pc = np.empty((n_perm, len(codes)), dtype=codes.dtype)
            for part in np.split(order, bounds):
                pick = np.argsort(rng.random((n_perm, len(part))), axis=1)
                pc[:, part] = codes[part][pick]
            perms[key] = pc
        null, _ = _shift(perms[key], strata, scores[:, g], V, S, min_n)
        null_max = np.max(null, axis=-1)  # -inf where no value is judged
        per = {int(s): float(diff[s, v]) for s in range(S) if np.isfinite(diff[s, v])}
        found.append((float(m[v]), v, g, per, null_max))
    if not found:
        return UseResult(None, None, None, None, {}, 0)
    obs, v, g, per, null_g = max(found, key=lambda t: t[0])
    if shared:  # one family of shuffles: the null of the maximum over every value and group
        null = np.max(np.stack([t[4] for t in found]), axis=0)
        p = (1.0 + float(np.sum(null >= obs - 1e-12))) / (1.0 + n_perm)
    else:
        p = min(1.0, (1.0 + float(np.sum(null_g >= obs - 1e-12))) / (1.0 + n_perm) * len(found))
    return UseResult(obs, v, g, p, per, len(per))
