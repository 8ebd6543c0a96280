"""The data-checks stage: runs before the model is loaded (no model needed) and produces ``DataChecks``.

For every held-out image: the properties of ``properties.py`` and two hashes; for every property and every
metadata column: how well it alone predicts each class (``predictive.py``); duplicates across classes; and,
when ``data.train_manifest`` names the training listing, images shared by the training and held-out sets.
Rules of kind ``data_confounder`` and ``data_duplicates`` judge the product against the pack's thresholds; the
report and results.json show it whole.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..config import AuditConfig
from ..errors import AuditError
from ..loading.decode import DecodeOptions, image_size_of
from ..loading.records import HeldOutSet, SampleRecord
from ..loading.roi import roi_mask
from .duplicates import exact_hash, near_pairs, phash, same_picture, thumbnail
from .predictive import property_aucs
from .properties import CATEGORICAL, DESCRIPTIONS, NUMERIC, image_properties

log = logging.getLogger("audit.datachecks")
MAX_LEVELS = 50  # a metadata column with more distinct values is an identifier, not a confounder candidate
MAX_PAIRS = 200  # duplicate pairs kept in the product (all are counted)


@dataclass(frozen=True)
class PropertyCheck:
    """How well one property alone predicts each group."""

    name: str
    source: str  # "image" | "file" | "metadata"
    description: str
    per_group: tuple[dict[str, Any], ...]  # {"group", "auc", "ci95", "n_positive"}
    n_missing: int = 0
    note: str = ""

    def best(self) -> dict[str, Any] | None:
        judged = [g for g in self.per_group if g["auc"] is not None]
        return max(judged, key=lambda g: (g["ci95"][0], g["auc"])) if judged else None


@dataclass(frozen=True)
class DuplicatePair:
    a: str
    b: str
    kind: str  # "exact" | "near"
    distance: int
    labels: tuple[str, str]


@dataclass(frozen=True)
class DataChecks:
    n_images: int
    groups: tuple[str, ...]
    properties: tuple[PropertyCheck, ...]
    values: pd.DataFrame  # (n_images, properties) per-image values, index = sample id (not written to JSON)
    cross_class_duplicates: tuple[DuplicatePair, ...]
    n_cross_class_duplicates: int
    n_same_class_duplicates: int
    train: dict[str, Any] | None  # train/held-out overlap when data.train_manifest is given
    unreadable: tuple[str, ...] = ()
    seconds: float = 0.0
    notes: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)

    def property(self, name: str) -> PropertyCheck:
        return next(p for p in self.properties if p.name == name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "n_images": self.n_images, "settings": self.settings,  # no wall time: same inputs, same JSON
            "properties": [{"name": p.name, "source": p.source, "description": p.description, "note": p.note,
                            "n_missing": p.n_missing, "per_group": list(p.per_group)} for p in self.properties],
            "duplicates": {
                "n_cross_class": self.n_cross_class_duplicates, "n_same_class": self.n_same_class_duplicates,
                "cross_class": [{"a": d.a, "b": d.b, "kind": d.kind, "distance": d.distance,
                                 "labels": list(d.labels)} for d in self.cross_class_duplicates]},
            "train_overlap": self.train, "unreadable": list(self.unreadable), "notes": list(self.notes),
        }


def _roi(r: SampleRecord) -> np.ndarray | None:
    """The ROI in the image's own pixels, or None (also when it cannot be read: the loader reports that)."""
    if r.roi_box is None and r.roi_mask is None:
        return None
    try:
        w, h = image_size_of(r.path)
        return roi_mask(r, (h, w), "stretch")
    except (AuditError, OSError, ValueError):
        return None


def targets_of(records: Sequence[SampleRecord], n_groups: int) -> np.ndarray:
    """(n, K) 0/1: one-hot classes, or the label sets of multi-label records."""
    out = np.zeros((len(records), n_groups), dtype=np.float64)
    for i, r in enumerate(records):
        label_set = getattr(r, "label_set", ()) or ()  # multi-label listings (absent on older records)
        if r.label is not None and int(r.label) >= 0:
            out[i, int(r.label)] = 1.0
        for j in label_set:
            out[i, int(j)] = 1.0
    return out


def _metadata_values(col: pd.Series) -> tuple[np.ndarray, bool, int, str]:
    """Codes (categorical) or floats (numeric) of a metadata column, whether categorical, missing count, note."""
    raw = col.astype(str).where(col.notna(), "")
    missing = (raw == "") | (raw.str.lower() == "nan")
    num = pd.to_numeric(raw.where(~missing), errors="coerce")
    levels = raw[~missing].nunique()
    if num[~missing].notna().all() and levels > 10:
        return num.to_numpy(dtype=np.float64), False, int(missing.sum()), ""
    if levels > MAX_LEVELS:
        return np.zeros(len(col)), True, int(missing.sum()), f"{levels} distinct values: an identifier, not tested"
    cats = pd.Categorical(raw.where(~missing))
    return np.asarray(cats.codes, dtype=np.int64), True, int(missing.sum()), ""


def _check(name: str, source: str, values: np.ndarray, categorical: bool, targets: np.ndarray,
           groups: Sequence[str], seed: int, n_missing: int = 0, note: str = "") -> PropertyCheck:
    desc = DESCRIPTIONS.get(name, f"metadata column '{name}'")
    vals = values[~np.isnan(values)] if not categorical else values[values >= 0]
    if note or len(np.unique(vals)) < 2:
        return PropertyCheck(name, source, desc, tuple({"group": g, "auc": None, "ci95": None, "n_positive": None}
                                                       for g in groups), n_missing, note or "constant")
    res = property_aucs(values, targets, categorical, seed=seed)
    per = tuple({"group": g, **r} for g, r in zip(groups, res, strict=True))
    return PropertyCheck(name, source, desc, per, n_missing)


def run_datachecks(records: Sequence[SampleRecord], groups: Sequence[str], metadata: pd.DataFrame, channels: int,
                   opts: DecodeOptions, seed: int = 0, train_records: Sequence[SampleRecord] | None = None,
                   max_hamming: int = 4) -> DataChecks:
    """The stage's work on a listing (the runner passes the held-out set and, when configured, the training
    listing). Unreadable images are skipped here and counted (the scoring stage reports or refuses them)."""
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    hashes: list[np.ndarray] = []
    thumbs: list[np.ndarray] = []
    exact: list[str] = []
    keep: list[int] = []
    unreadable: list[str] = []
    for i, r in enumerate(records):
        try:
            roi = _roi(r)
            props, a = image_properties(r.path, channels, opts, roi)
        except (AuditError, OSError, ValueError) as e:
            log.debug("data checks: %s unreadable: %s", r.path, e)
            unreadable.append(str(r.id))
            continue
        rows.append(props)
        hashes.append(phash(a))
        thumbs.append(thumbnail(a))
        exact.append(exact_hash(a))
        keep.append(i)
    recs = [records[i] for i in keep]
    ids = [str(r.id) for r in recs]
    table = pd.DataFrame(rows, index=ids)
    targets = targets_of(recs, len(groups))
    checks: list[PropertyCheck] = []
    if len(recs) >= 10:
        for name in NUMERIC:
            if name in table:
                v = table[name].to_numpy(dtype=np.float64)
                checks.append(_check(name, "file" if name in ("jpeg_quality", "aspect_ratio", "pixels") else "image",
                                     v, False, targets, groups, seed, int(np.isnan(v).sum())))
        for name in CATEGORICAL:
            codes = pd.Categorical(table[name].astype(str)).codes.astype(np.int64)
            checks.append(_check(name, "file", codes, True, targets, groups, seed))
        meta = metadata.iloc[keep].reset_index(drop=True) if len(metadata.columns) else metadata
        for col in meta.columns:
            v, cat, miss, note = _metadata_values(meta[col])
            checks.append(_check(str(col), "metadata", v, cat, targets, groups, seed, miss, note))
    labels = [tuple(np.flatnonzero(t).tolist()) for t in targets]
    h = np.stack(hashes) if hashes else np.zeros((0, 8), dtype=np.uint8)
    pairs: list[DuplicatePair] = []
    n_cross = n_same = 0

    def names(lab: tuple[int, ...]) -> str:
        return "|".join(groups[j] for j in lab)

    seen_exact: dict[str, int] = {}
    exact_pairs: set[tuple[int, int]] = set()
    for j, e in enumerate(exact):
        if e in seen_exact:
            exact_pairs.add((seen_exact[e], j))
        else:
            seen_exact[e] = j
    th = np.stack(thumbs) if thumbs else np.zeros((0, 32 * 32))
    for i, j, d in near_pairs(h, None, max_hamming):
        if exact[i] != exact[j] and not same_picture(th[i], th[j]):
            continue
        kind = "exact" if (i, j) in exact_pairs or exact[i] == exact[j] else "near"
        if labels[i] != labels[j]:
            n_cross += 1
            if len(pairs) < MAX_PAIRS:
                pairs.append(DuplicatePair(ids[i], ids[j], kind, d, (names(labels[i]), names(labels[j]))))
        else:
            n_same += 1
    train = None
    if train_records is not None:
        train = _train_overlap(train_records, h, th, exact, ids, channels, opts, max_hamming)
    notes = []
    if unreadable:
        notes.append(f"{len(unreadable)} image(s) could not be read for the data checks")
    return DataChecks(len(recs), tuple(groups), tuple(checks), table, tuple(pairs), n_cross, n_same, train,
                      tuple(unreadable), time.perf_counter() - t0, tuple(notes),
                      {"max_hamming": max_hamming, "folds": 5, "bins": 10, "interval": "DeLong 95 %"})


def check_data(cfg: AuditConfig, heldout: HeldOutSet, groups: Sequence[str]) -> DataChecks:
    """The runner's stage: the held-out listing (and ``data.train_manifest`` when set), decoded as the loader decodes
    them for the model (channels, value range, DICOM window); ``groups``: what the labels are judged by (the task's
    groups: classes, or labels)."""
    d = cfg.data
    train = None
    if d.train_manifest is not None:
        from ..loading.manifest import read_csv

        train = read_csv(d, cfg.resolve(d.train_manifest), d.allow_outside_root).records
    return run_datachecks(heldout.records, tuple(groups), heldout.metadata_frame(), d.channels,
                          DecodeOptions(value_range=d.value_range, window=d.window), cfg.seed, train)


def _train_overlap(train_records: Sequence[SampleRecord], h: np.ndarray, thumbs: np.ndarray, exact: list[str],
                   ids: list[str], channels: int, opts: DecodeOptions, max_hamming: int) -> dict[str, Any]:
    from ..loading.decode import decode_image

    th: list[np.ndarray] = []
    tt: list[np.ndarray] = []
    te: list[str] = []
    tid: list[str] = []
    n_bad = 0
    for r in train_records:
        try:
            a = decode_image(r.path, channels, opts).to_array()
        except (AuditError, OSError, ValueError):
            n_bad += 1
            continue
        th.append(phash(a))
        tt.append(thumbnail(a))
        te.append(exact_hash(a))
        tid.append(str(r.id))
    ex = set(te)
    n_exact = sum(1 for e in exact if e in ex)
    near = near_pairs(h, np.stack(th), max_hamming) if th and len(h) else []
    near = [(i, j, d) for i, j, d in near if same_picture(thumbs[i], tt[j])]
    heldout_hit = sorted({i for i, _, _ in near} | {i for i, e in enumerate(exact) if e in ex})
    return {"n_train": len(train_records), "n_train_unreadable": n_bad, "n_heldout_exact": n_exact,
            "n_heldout_overlapping": len(heldout_hit),
            "fraction_heldout_overlapping": len(heldout_hit) / len(ids) if ids else math.nan,
            "examples": [{"heldout": ids[i], "train": tid[j], "distance": d} for i, j, d in near[:MAX_PAIRS]]}
