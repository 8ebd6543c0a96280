"""The compare stage: the audit against a baseline (the released model's results.json and maps.npz)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..engine.probe import ModelProbe
from ..errors import AuditError
from ..maps.explain import map_groups
from ..maps.store import StoredMaps, from_attributions
from ..products import Finding, Predictions
from ..tasks.base import Task, TaskMetrics
from .explanations import compare_explanations
from .reports import candidate_view, compare_results

log = logging.getLogger(__name__)

MapPair = tuple[str, np.ndarray, np.ndarray]  # (sample id, baseline map, candidate map)


@dataclass(frozen=True)
class Baseline:
    """What the user gave to compare with."""

    results: Mapping[str, Any]  # the baseline's results.json
    maps: Mapping[str, StoredMaps] | None = None  # its maps.npz
    unpaired: bool = False  # allow another held-out set (headline deltas only)


@dataclass(frozen=True)
class Comparison:
    """The compare stage's product: the JSON-safe diff, and the least similar map pairs drawn in the report."""

    data: dict[str, Any]
    map_pairs: dict[str, list[MapPair]] = field(default_factory=dict)


def maps_for_comparison(probe: ModelProbe, kept: Mapping[str, StoredMaps],
                        baseline_maps: Mapping[str, StoredMaps]) -> dict[str, StoredMaps]:
    """The candidate's maps, plus candidate maps for every baseline pick it lacks, explained for the class the
    baseline explained (so that each baseline pick in the held-out set is compared like for like)."""
    out = dict(kept)
    in_set = set(probe.predictions.ids.tolist())
    for name, cand in kept.items():
        base = baseline_maps.get(name)
        if base is None:
            continue
        have = cand.index()
        missing = [(sid, int(t)) for sid, t in zip(base.ids, base.targets, strict=True)
                   if sid in in_set and (sid, int(t)) not in have]
        if not missing:
            continue
        try:
            extra = probe.attributions(name, [m[0] for m in missing], np.array([m[1] for m in missing]))
        except (AuditError, RuntimeError, ValueError) as e:
            log.warning("maps of %s for the baseline's classes unavailable: %s", name, e)
            continue
        labels = map_groups(probe, extra)
        add = from_attributions(extra, labels, probe.roi)
        out[name] = StoredMaps(
            explainer=name, ids=cand.ids + add.ids, targets=np.concatenate([cand.targets, add.targets]),
            labels=np.concatenate([cand.labels, add.labels]), maps=np.concatenate([cand.maps, add.maps]),
            roi_share=np.concatenate([cand.roi_share, add.roi_share]), signed=cand.signed)
    return out


def least_similar_pairs(summary: Mapping[str, Any], base: Mapping[str, StoredMaps],
                        cand: Mapping[str, StoredMaps], classes: Sequence[str], n: int = 2) -> dict[str, list[MapPair]]:
    """(sample id, baseline map, candidate map) of the ``n`` least similar samples per explainer, drawn in the
    report's "Changes since baseline"."""
    out: dict[str, list[MapPair]] = {}
    for name, e in summary.items():
        bi, ci = base[name].index(), cand[name].index()
        rows = []
        for r in e.get("lowest", [])[:n]:
            key = (r["id"], list(classes).index(r["target"]))
            rows.append((r["id"], base[name].maps[bi[key]], cand[name].maps[ci[key]]))
        if rows:
            out[name] = rows
    return out


def compare_with_baseline(baseline: Baseline, task: Task, preds: Predictions, metrics: TaskMetrics,
                          findings: Sequence[Finding], probe: ModelProbe, kept: Mapping[str, StoredMaps],
                          seed: int, images_sha256: str) -> Comparison:
    """Metric deltas with paired intervals, flips, rule changes, and (with the baseline's maps, on the same
    held-out set) how the explanations of the baseline's picks changed."""
    classes = list(task.classes)
    rules = [{"id": f.rule, "status": f.status} for f in findings]
    cand = candidate_view(task.predictions_json(preds), task.results_sections(metrics)["metrics"], classes, rules,
                          images_sha256)
    data = compare_results(baseline.results, cand, unpaired=baseline.unpaired, seed=seed)
    pairs: dict[str, list[MapPair]] = {}
    if baseline.maps and data.get("paired"):
        cand_maps = maps_for_comparison(probe, kept, baseline.maps)
        data["explanations"] = compare_explanations(baseline.maps, cand_maps, task.classes)
        pairs = least_similar_pairs(data["explanations"], baseline.maps, cand_maps, task.classes)
    return Comparison(data=data, map_pairs=pairs)
