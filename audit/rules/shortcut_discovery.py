"""shortcut_discovery: SpRAy-style clustering of explanations, class by class (Lapuschkin et al. 2019).

Per class: the positive parts of the maps are average-pooled to ``grid``×``grid`` and normalised to unit mass;
a symmetric k-nearest-neighbour affinity (Gaussian of the Euclidean distance, bandwidth = median kNN
distance) is built and the number of clusters is chosen by the eigengap of the normalised Laplacian (at
most ``max_clusters``; the smallest k whose gap is at least half the largest gap, so comparable gaps favour
fewer clusters); spectral clustering (scikit-learn, precomputed affinity, seeded) groups the maps.
A cluster (at least ``min_cluster_size`` members) is flagged when its members put less of their mass inside their
(grown) ROI than ``min_enrichment`` times the ROI's share of the image (what an evenly spread map puts there: a small
object leaves most of any map's mass outside, so a fixed share outside failed clean models), or optionally more
than ``max_outside_share`` outside, or when the mass that lies outside the members' ROIs concentrates in one fixed
small window (more than ``min_window_mass`` of the cluster's mass in a window covering at most ``window_area`` of
the image). Without ROIs the window test runs on the whole map (then a cluster of objects that share a position
can look like a fixed spot: give ROIs where you can).
The rule fails when, in some class, more than ``max_flagged_fraction`` of the samples fall in flagged clusters.

Only maps that explain the model are clustered: ``explainer = "auto"`` (the default) uses transformer LRP on a model
with attention blocks and Grad-CAM otherwise, and the explainer must pass the randomisation and deletion / insertion
checks on the audited model (``trust``, rules/_trust.py); when none passes the rule is ``not_applicable`` with each
candidate's reason.
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from scipy.ndimage import binary_dilation
from sklearn.cluster import SpectralClustering

from ..products import Finding
from ._shortcuts import (
    MAX_EVIDENCE_IDS,
    class_groups,
    explainer_title,
    map_problem,
    nested,
    pct,
    positive_part,
    require_probe,
    rnd,
    scope_words,
)
from ._trust import TrustSettings, not_used_words, pick_explainer, trust_details, untrusted_words
from .base import Criterion, Rule, RuleParams
from .evidence import Evidence
from .shortcut_classes import BACKGROUND, FIXED_POSITION


class ShortcutDiscoveryParams(RuleParams):
    explainer: str | list[str] = Field(default="auto", description="an explainer, a list (the first that passes the "
                                       "trust checks is used) or auto: transformer_lrp, else gradcam")
    scope: Literal["correct", "picks", "all"] = "correct"
    n: int | None = Field(default=150, ge=2, description="at most n samples per class (seeded)")
    group_by: Literal["true", "predicted"] = "true"
    grid: int = Field(default=16, ge=4, le=64)
    knn: int = Field(default=10, ge=2)
    max_clusters: int = Field(default=6, ge=1, le=20)
    min_cluster_size: int = Field(default=5, ge=2)
    min_enrichment: float = Field(default=1.0, ge=0.0, description="a cluster is flagged when its share inside the "
                                  "ROI is below this multiple of the ROI's share of the image")
    max_outside_share: float | None = Field(default=None, ge=0.0, le=1.0,
                                            description="optional: flagged when more of its mass lies outside the ROI")
    window_area: float = Field(default=0.1, gt=0.0, le=1.0)
    min_window_mass: float = Field(default=0.5, ge=0.0, le=1.0)
    roi_margin: float = Field(default=0.05, ge=0.0, le=0.5,
                              description="ROI grown by this fraction of the image side before 'outside' is measured")
    max_flagged_fraction: float = Field(default=0.1, ge=0.0, le=1.0)
    trust: TrustSettings = Field(default_factory=TrustSettings, description="the explainer's checks on this model")


def pool_maps(pos: np.ndarray, grid: int) -> np.ndarray:
    t = torch.from_numpy(pos.astype(np.float32))[:, None]
    return F.adaptive_avg_pool2d(t, (grid, grid))[:, 0].double().numpy()


def knn_affinity(X: np.ndarray, k: int) -> np.ndarray:
    n = len(X)
    d2 = ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    d = np.sqrt(np.maximum(d2, 0.0))
    k = min(k, n - 1)
    nn_idx = np.argsort(d, axis=1)[:, 1:k + 1]
    sigma = float(np.median(d[np.arange(n)[:, None], nn_idx])) or 1.0
    A = np.zeros((n, n))
    rows = np.repeat(np.arange(n), k)
    A[rows, nn_idx.ravel()] = np.exp(-d[rows, nn_idx.ravel()] ** 2 / (2 * sigma**2))
    A = np.maximum(A, A.T)
    np.fill_diagonal(A, 0.0)
    return A


def eigengap_k(A: np.ndarray, kmax: int) -> tuple[int, list[float]]:
    deg = A.sum(1)
    dinv = np.where(deg > 0, 1.0 / np.sqrt(np.where(deg > 0, deg, 1.0)), 0.0)
    L = np.eye(len(A)) - dinv[:, None] * A * dinv[None, :]
    ev = np.sort(np.linalg.eigvalsh(L))[: kmax + 1]
    if len(ev) < 2:
        return 1, ev.tolist()
    gaps = np.diff(ev)[:kmax]
    # the smallest k whose gap is at least half the largest one: with comparable gaps, fewer clusters
    return int(np.flatnonzero(gaps >= 0.5 * gaps.max())[0] + 1), ev.tolist()


def best_window(m: np.ndarray, side: int) -> tuple[float, tuple[int, int]]:
    """Largest mass of ``m`` (g, g) in a side×side window, and its top-left corner (row, col)."""
    c = np.pad(m, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    s = c[side:, side:] - c[:-side, side:] - c[side:, :-side] + c[:-side, :-side]
    r, q = np.unravel_index(int(np.argmax(s)), s.shape)
    return float(s[r, q]), (int(r), int(q))


class ShortcutDiscovery(Rule[ShortcutDiscoveryParams]):
    kind = "shortcut_discovery"
    title = "Clusters of explanations that focus off the object"
    needs = frozenset({"maps", "whole_image"})
    shortcuts = (FIXED_POSITION, BACKGROUND)
    criterion = Criterion("share of a class's samples in flagged explanation clusters", "fraction of samples",
                          "above")

    def check(self, evidence: Evidence) -> list[Finding]:
        p = self.params
        probe = require_probe(evidence)
        H, W = probe.input_size
        g = p.grid
        side = max(1, int(np.floor(np.sqrt(p.window_area) * g)))
        margin = round(p.roi_margin * min(H, W))
        ids_all = evidence.sample_ids(p.scope)
        multilabel = evidence.predictions.labels.ndim == 2  # a sample may belong to several groups
        groups_all = None if multilabel else class_groups(evidence, ids_all, p.group_by)
        rows_all = evidence.predictions.index_of(ids_all)
        if len(ids_all) < max(2 * p.min_cluster_size, 4):  # no class can have enough: the explainer is not checked
            return [self.error(f"no class has enough {scope_words(p.scope)} samples to cluster "
                               f"(need {max(2 * p.min_cluster_size, 4)})")]
        name, tried = pick_explainer(probe, p.explainer, list(ids_all), probe.targets_for(list(ids_all), "predicted"),
                                     p.trust, evidence.rng(f"{p.id}:trust"))
        if name is None:
            return [self.not_applicable(
                "no explainer that explains this model, so its explanations are not clustered: "
                + untrusted_words(tried), {"explainers_tried": trust_details(tried)})]
        title = explainer_title(probe, name)
        classes_out: dict[str, dict] = {}
        worst: tuple[float, int, dict | None] = (-1.0, -1, None)
        n_rois = 0
        any_judged = False
        for ci, cname in enumerate(evidence.classes):
            if groups_all is None:
                in_group = probe.task.members(evidence.predictions, ci, p.group_by)[rows_all]
                members = [s for s, m in zip(ids_all, in_group, strict=True) if m]
            else:
                members = [s for s, grp in zip(ids_all, groups_all, strict=True) if grp == ci]
            if p.n is not None and len(members) > p.n:
                pick = evidence.rng(f"{p.id}:{ci}").choice(len(members), size=p.n, replace=False)
                members = [members[i] for i in sorted(pick)]
            if len(members) < max(2 * p.min_cluster_size, 4):
                classes_out[cname] = {"n": len(members), "note": "too few samples to cluster"}
                continue
            # a multi-label sample's map explains the group's label; a single-label one its predicted class
            target: str | np.ndarray = np.full(len(members), ci) if multilabel else "predicted"
            aset = probe.attributions(name, members, target)
            bad = np.array([map_problem(m) is not None for m in aset.maps])
            pos = positive_part(aset.maps)
            tot = pos.reshape(len(members), -1).sum(1)
            rois = [probe.roi(s) for s in members]
            outside_masks = np.ones((len(members), H, W), dtype=bool)
            has_roi = np.zeros(len(members), dtype=bool)
            area = np.zeros(len(members))
            for i, r in enumerate(rois):
                if r is not None:
                    has_roi[i] = True
                    grown = binary_dilation(r, iterations=margin) if margin > 0 else r
                    outside_masks[i] = ~grown
                    area[i] = float(grown.mean())
            n_rois += int(has_roi.sum())
            norm = pos / np.where(tot > 0, tot, 1.0)[:, None, None]
            small = pool_maps(norm, g) * (H * W) / (g * g)  # unit mass per map on the grid
            small_out = pool_maps(norm * outside_masks, g) * (H * W) / (g * g)
            ok = ~bad
            cluster_of = np.full(len(members), -1)
            eig: list[float] = []
            k = 0
            if ok.sum() >= max(2 * p.min_cluster_size, 4):
                X = small[ok].reshape(int(ok.sum()), -1)
                A = knn_affinity(X, p.knn)
                k, eig = eigengap_k(A, min(p.max_clusters, int(ok.sum()) - 1))
                if k > 1:
                    sc = SpectralClustering(n_clusters=k, affinity="precomputed",
                                            random_state=int(evidence.rng(f"{p.id}:{ci}:sc").integers(2**31 - 1)),
                                            assign_labels="kmeans", n_init=10)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        cluster_of[ok] = sc.fit_predict(A + 1e-9)
                else:
                    cluster_of[ok] = 0
            clusters = []
            flagged_n = 0
            for cl in range(max(k, 0)):
                rows = np.flatnonzero(cluster_of == cl)
                if len(rows) == 0:
                    continue
                mean_map = small[rows].mean(0)
                out_map = small_out[rows].mean(0)
                out_share = float(out_map.sum()) if has_roi[rows].all() else None
                area_share = float(area[rows].mean()) if has_roi[rows].all() else None
                wmass, (wr, wc) = best_window(out_map if has_roi[rows].all() else mean_map, side)
                reasons = []
                if len(rows) >= p.min_cluster_size:
                    if out_share is not None and area_share is not None and \
                            1.0 - out_share < p.min_enrichment * area_share:
                        reasons.append(f"{pct(1.0 - out_share)} of the mass inside the object, which covers "
                                       f"{pct(area_share)} of the image")
                    elif out_share is not None and p.max_outside_share is not None and \
                            out_share > p.max_outside_share:
                        reasons.append(f"{pct(out_share)} of the mass outside the object")
                    if wmass > p.min_window_mass:
                        reasons.append(f"{pct(wmass)} of the mass in one fixed window "
                                       f"({pct(side * side / (g * g))} of the image)")
                entry = {
                    "size": len(rows), "flagged": bool(reasons), "reasons": reasons,
                    "outside_share": rnd(out_share), "area_share": rnd(area_share), "window_mass": rnd(wmass),
                    "window_px": [int(wc * W / g), int(wr * H / g), int((wc + side) * W / g),
                                  int((wr + side) * H / g)],
                    "mean_map": nested(mean_map / max(mean_map.max(), 1e-12), 3),
                    "member_ids": [members[i] for i in rows],
                }
                clusters.append(entry)
                if reasons:
                    flagged_n += len(rows)
            frac = flagged_n / len(members)
            any_judged = True
            classes_out[cname] = {"n": len(members), "n_unusable_maps": int(bad.sum()), "n_clusters": k,
                                  "eigenvalues": [rnd(v) for v in eig], "flagged_fraction": rnd(frac),
                                  "cluster_sizes": [c["size"] for c in clusters], "clusters": clusters}
            if bad.sum() / len(members) > p.max_flagged_fraction:
                classes_out[cname]["note"] = f"{int(bad.sum())} unusable (all-zero / non-finite) maps"
            score = max(frac, float(bad.mean()))
            if score > worst[0]:
                worst = (score, ci, classes_out[cname])
        details = {"explainer": name, "explainers_tried": trust_details(tried), "scope": p.scope, "grid": g,
                   "window_side_cells": side, "n_with_roi": n_rois, "classes": classes_out}
        checked = f" {tried[-1].reason[:1].upper()}{tried[-1].reason[1:]}." + not_used_words(tried)
        if not any_judged or worst[2] is None:
            return [self.error(f"no class has enough {scope_words(p.scope)} samples to cluster "
                               f"(need {max(2 * p.min_cluster_size, 4)})")]
        score, ci, entry = worst
        cname = evidence.classes[ci]
        failed = score > p.max_flagged_fraction
        flagged = [c for c in entry["clusters"] if c["flagged"]]
        ids = [sid for c in sorted(flagged, key=lambda c: -c["size"]) for sid in c["member_ids"]][:MAX_EVIDENCE_IDS]
        details["worst_class"] = cname
        summary = "; ".join(f"'{c}': {t.get('n_clusters', 0)} cluster(s), {pct(t.get('flagged_fraction') or 0)} "
                            "flagged" for c, t in classes_out.items() if "flagged_fraction" in t)
        if failed and flagged:
            c0 = max(flagged, key=lambda c: c["size"])
            msg = (f"{pct(entry['flagged_fraction'])} of the {entry['n']} {scope_words(p.scope)} '{cname}' samples "
                   f"fall in {len(flagged)} {title} cluster(s) that focus off the object; the largest "
                   f"({c0['size']} samples): {', '.join(c0['reasons'])}, window x {c0['window_px'][0]}–"
                   f"{c0['window_px'][2]}, y {c0['window_px'][1]}–{c0['window_px'][3]} px. Per class: {summary}.{checked}")
        elif failed:
            msg = (f"'{cname}': {entry['n_unusable_maps']} of {entry['n']} {title} maps are unusable (all-zero or "
                   f"non-finite); the explanations cannot be clustered. Per class: {summary}.{checked}")
        else:
            msg = f"no class has a cluster of explanations focused off the object. Per class: {summary}.{checked}"
        return [self.finding(failed, msg, score, p.max_flagged_fraction, ids, details)]
