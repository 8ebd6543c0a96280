"""The data checks: image properties, metadata columns and duplicates from one model-free pass over the held-out
set, which also gives the data fingerprint, and the product ``DataChecks``.

Each image is decoded once, in loader processes (``loading.inspect``, ``data.num_workers``), where its properties
(``properties.py``), its hashes (``duplicates.py``) and its fingerprint line (``fingerprint.py``) are computed
(``inspect.py``). The driver reduces the batches as they arrive (``collect.DataPass``): per-property counts
(``stats.py``: no per-image value is kept), the per-image hashes the duplicate search needs (24 bytes each; the
thumbnails in a file mapped from disk) and the fingerprint's lanes. From those: how well each property and metadata
column alone predicts each group (cross-validated, exact from the counts), duplicates across classes
(``pairs.py``: multi-index hashing, never all pairs) and, when ``data.train_manifest`` names the training listing,
images shared by the training and held-out sets (the training images go through the same pass). ``data.checks``
chooses which checks run; the fingerprint is computed whatever it says. Rules of kind ``data_confounder`` and
``data_duplicates`` judge the product against the pack's thresholds; the report and results.json show it whole.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..config import AuditConfig
from ..loading.decode import DecodeOptions
from ..loading.inspect import inspect_locally
from ..loading.records import HeldOutSet, SampleRecord, ids_at, targets_at
from .collect import CHECKS, DataPass
from .pairs import MAX_PAIRS, heldout_pairs, overlap
from .properties import CATEGORICAL, DESCRIPTIONS, NUMERIC
from .stats import BITS, FOLDS, Cells, folds_of, property_aucs

MAX_LEVELS = 50  # a metadata column with more distinct values is an identifier, not a confounder candidate
CHUNK = 65536  # listing rows reduced at a time (metadata columns, label keys)


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
    cross_class_duplicates: tuple[DuplicatePair, ...]
    n_cross_class_duplicates: int
    n_same_class_duplicates: int
    train: dict[str, Any] | None  # train/held-out overlap when data.train_manifest is given
    unreadable: tuple[str, ...] = ()
    seconds: float = 0.0
    notes: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)
    checks: tuple[str, ...] = CHECKS  # which checks ran (data.checks)

    def property(self, name: str) -> PropertyCheck:
        return next(p for p in self.properties if p.name == name)

    def ran(self, check: str) -> bool:
        return check in self.checks

    def as_dict(self) -> dict[str, Any]:
        dup = "duplicates" in self.checks
        return {
            "n_images": self.n_images, "settings": self.settings,  # no wall time: same inputs, same JSON
            "properties": [{"name": p.name, "source": p.source, "description": p.description, "note": p.note,
                            "n_missing": p.n_missing, "per_group": list(p.per_group)} for p in self.properties],
            "duplicates": {
                "n_cross_class": self.n_cross_class_duplicates, "n_same_class": self.n_same_class_duplicates,
                "cross_class": [{"a": d.a, "b": d.b, "kind": d.kind, "distance": d.distance,
                                 "labels": list(d.labels)} for d in self.cross_class_duplicates]} if dup else None,
            "train_overlap": self.train, "unreadable": list(self.unreadable), "notes": list(self.notes),
        }


# ---- property and metadata checks --------------------------------------------------------------------------

def _check(name: str, source: str, cells: Cells | None, groups: Sequence[str], n_missing: int = 0,
           note: str = "") -> PropertyCheck:
    desc = DESCRIPTIONS.get(name, f"metadata column '{name}'")
    if note or cells is None or cells.n_values < 2:
        return PropertyCheck(name, source, desc, tuple({"group": g, "auc": None, "ci95": None, "n_positive": None}
                                                       for g in groups), n_missing, note or "constant")
    per = tuple({"group": g, **r} for g, r in zip(groups, property_aucs(cells), strict=True))
    return PropertyCheck(name, source, desc, per, n_missing)


def _column(col: pd.Series) -> tuple[np.ndarray, bool, int, str]:
    """A metadata column as floats (numeric, NaN = missing) or text (categorical, '' = missing), whether
    categorical, the missing count and a note (an identifier is not tested)."""
    raw = col.astype(str).where(col.notna(), "")
    missing = (raw == "") | (raw.str.lower() == "nan")
    num = pd.to_numeric(raw.where(~missing), errors="coerce")
    levels = raw[~missing].nunique()
    n_missing = int(missing.sum())
    if num[~missing].notna().all() and levels > 10:
        return num.to_numpy(dtype=np.float64), False, n_missing, ""
    if levels > MAX_LEVELS:
        return np.zeros(0), True, n_missing, f"{levels} distinct values: an identifier, not tested"
    return raw.where(~missing, "").to_numpy(dtype=str), True, n_missing, ""


def _metadata_checks(records: Sequence[SampleRecord], frame: pd.DataFrame, rows: np.ndarray,
                     groups: Sequence[str], seed: int) -> list[PropertyCheck]:
    columns = [(str(c), _column(frame[c].iloc[rows].reset_index(drop=True))) for c in frame.columns]
    cells = {name: Cells(len(groups), cat) for name, (_, cat, _, note) in columns if not note}
    for s in range(0, len(rows), CHUNK):  # folds and targets a chunk at a time
        r = rows[s:s + CHUNK]
        fold, targets = folds_of(ids_at(records, r), seed), targets_at(records, r, len(groups))
        for name, (values, _, _, note) in columns:
            if not note:
                cells[name].add(values[s:s + CHUNK], fold, targets)
    return [_check(name, "metadata", cells.get(name), groups, n_missing, note)
            for name, (_, _, n_missing, note) in columns]


# ---- duplicates ----------------------------------------------------------------------------------------------

def label_keys(records: Sequence[SampleRecord], rows: np.ndarray, n_groups: int) -> np.ndarray:
    """(len(rows),) int64: equal keys = the same label (or label set)."""
    keys = np.zeros(len(rows), dtype=np.int64)
    seen: dict[bytes, int] = {}
    for s in range(0, len(rows), CHUNK):
        packed = np.packbits(targets_at(records, rows[s:s + CHUNK], n_groups).astype(bool), axis=1)
        keys[s:s + CHUNK] = [seen.setdefault(p.tobytes(), len(seen)) for p in packed]
    return keys


def _names(records: Sequence[SampleRecord], row: int, groups: Sequence[str]) -> str:
    t = targets_at(records, np.array([row]), len(groups))[0]
    return "|".join(groups[j] for j in np.flatnonzero(t))


def _duplicates(p: DataPass, rows: np.ndarray, groups: Sequence[str], radius: int
                ) -> tuple[tuple[DuplicatePair, ...], int, int]:
    assert p.thumbs is not None
    keys = label_keys(p.records, rows, len(groups))
    found = heldout_pairs(p.phash[rows], p.exact[rows], p.thumbs.array, rows, keys, radius)
    pairs = tuple(DuplicatePair(str(p.records[int(rows[a])].id), str(p.records[int(rows[b])].id), kind, d,
                                (_names(p.records, int(rows[a]), groups), _names(p.records, int(rows[b]), groups)))
                  for a, b, d, kind in found.examples)
    return pairs, found.n_cross, found.n_same


def _train_overlap(p: DataPass, rows: np.ndarray, t: DataPass, radius: int) -> dict[str, Any]:
    assert p.thumbs is not None and t.thumbs is not None
    t_rows = np.flatnonzero(t.ok)
    exact_hit, hit, (i, j, d) = overlap(p.phash[rows], p.exact[rows], p.thumbs.array, rows,
                                        t.phash[t_rows], t.exact[t_rows], t.thumbs.array, t_rows, radius)
    i, j, d = i[:MAX_PAIRS], j[:MAX_PAIRS], d[:MAX_PAIRS]
    h_ids, t_ids = ids_at(p.records, rows[i]), ids_at(t.records, t_rows[j])
    return {"n_train": len(t.records), "n_train_unreadable": int((~t.ok).sum()),
            "n_heldout_exact": int(exact_hit.sum()), "n_heldout_overlapping": len(hit),
            "fraction_heldout_overlapping": len(hit) / len(rows) if len(rows) else math.nan,
            "examples": [{"heldout": a, "train": b, "distance": int(x)} for a, b, x in zip(h_ids, t_ids, d,
                                                                                           strict=True)]}


# ---- the stage ---------------------------------------------------------------------------------------------

def finish(p: DataPass, groups: Sequence[str], metadata: pd.DataFrame, max_hamming: int = 4,
           train: DataPass | None = None) -> DataChecks:
    """The product, from a pass that has seen every row of its listing."""
    t0 = time.perf_counter()
    rows = np.flatnonzero(p.ok)
    unreadable = tuple(ids_at(p.records, np.flatnonzero(p.seen & ~p.ok)))
    checks: list[PropertyCheck] = []
    if len(rows) >= 10:
        if "properties" in p.checks:
            for name in NUMERIC:
                c = p.cells[name]
                checks.append(_check(name, "file" if name in ("jpeg_quality", "aspect_ratio", "pixels") else "image",
                                     c, groups, c.n_missing))
            checks += [_check(name, "file", p.cells[name], groups) for name in CATEGORICAL]
        if "metadata" in p.checks and len(metadata.columns):
            checks += _metadata_checks(p.records, metadata, rows, groups, p.seed)
    pairs: tuple[DuplicatePair, ...] = ()
    n_cross = n_same = 0
    if "duplicates" in p.checks:
        pairs, n_cross, n_same = _duplicates(p, rows, groups, max_hamming)
    overlap_ = _train_overlap(p, rows, train, max_hamming) if train is not None and "train_overlap" in p.checks \
        else None
    notes = []
    if unreadable:
        notes.append(f"{len(unreadable)} image(s) could not be read for the data checks")
    skipped = [c for c in CHECKS if c not in p.checks]
    if skipped:
        notes.append(f"not run (data.checks): {', '.join(skipped)}")
    return DataChecks(len(rows), tuple(groups), tuple(checks), pairs, n_cross, n_same, overlap_, unreadable,
                      p.seconds + time.perf_counter() - t0, tuple(notes),
                      {"max_hamming": max_hamming, "folds": FOLDS, "bins": 10, "interval": "DeLong 95 %",
                       "quantisation": f"{BITS} significant bits", "checks": list(p.checks)}, p.checks)


def run_pass(records: Sequence[SampleRecord], groups: Sequence[str], metadata: pd.DataFrame, channels: int,
             opts: DecodeOptions, seed: int = 0, train_records: Sequence[SampleRecord] | None = None,
             max_hamming: int = 4, checks: Sequence[str] = CHECKS, root: str = "/", num_workers: int = 0,
             batch_size: int = 64) -> tuple[DataChecks | None, str]:
    """The model-free pass over ``records`` (rooted at ``root``, the resolved data root): the data checks of
    ``checks`` (None when empty) and the data fingerprint."""
    p = DataPass(records, root, len(groups), checks, seed, channels, opts)
    t = None
    try:
        inspect_locally(records, np.arange(len(records)), p.inspector, p.add, batch_size, num_workers)
        if train_records is not None and "train_overlap" in p.checks:
            t = DataPass(train_records, root, len(groups), ("train_overlap",), seed, channels, opts)
            inspect_locally(train_records, np.arange(len(train_records)), t.inspector, t.add, batch_size,
                            num_workers)
        return (finish(p, groups, metadata, max_hamming, t) if p.checks else None), p.fingerprint
    finally:
        p.close()
        if t is not None:
            t.close()


def run_datachecks(records: Sequence[SampleRecord], groups: Sequence[str], metadata: pd.DataFrame, channels: int,
                   opts: DecodeOptions, seed: int = 0, train_records: Sequence[SampleRecord] | None = None,
                   max_hamming: int = 4, checks: Sequence[str] = CHECKS) -> DataChecks:
    """The data checks of a listing in this process (tests and callers without a configuration)."""
    dc, _ = run_pass(records, groups, metadata, channels, opts, seed, train_records, max_hamming,
                     checks or CHECKS)
    assert dc is not None
    return dc


def check_data(cfg: AuditConfig, heldout: HeldOutSet, groups: Sequence[str]) -> tuple[DataChecks | None, str]:
    """The runner's stage: the held-out listing (and ``data.train_manifest`` when set and ``train_overlap`` is in
    ``data.checks``), decoded as the loader decodes them for the model (channels, value range, DICOM window);
    ``groups``: what the labels are judged by (the task's groups: classes, or labels). Returns the data checks
    (None when ``data.checks`` is empty) and the data fingerprint (results.json ``provenance.data.images_sha256``)."""
    d = cfg.data
    train = None
    if d.train_manifest is not None and "train_overlap" in d.checks:
        from ..loading.manifest import read_csv  # only with a training listing

        train = read_csv(d, cfg.resolve(d.train_manifest), d.allow_outside_root).records
    return run_pass(heldout.records, tuple(groups), heldout.metadata_frame(), d.channels,
                    DecodeOptions(value_range=d.value_range, window=d.window), cfg.seed, train, checks=d.checks,
                    root=str(heldout.root.resolve()), num_workers=d.num_workers, batch_size=d.batch_size)
