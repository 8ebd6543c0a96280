"""The slice stage: [slices] over the scored held-out set. It reads what scoring gathered through the engine (the
penultimate features, the labels, the answers; a segmentation's per-image Dice), so it adds no model pass beyond
decoding the few typical images the report draws (unless the model has no final nn.Linear: see features.py). Runs after scoring, before the rules.

Per task: a single-label task slices correctness (accuracy) with Domino's label and prediction terms; a multi-label
task one label's correctness (``slices.label``); a segmentation the per-image Dice (mean over its classes). A model
without a final nn.Linear is embedded by its last convolution, pooled (one extra pass); one with neither is
``not_applicable`` with the reason."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from ..config import AuditConfig, SlicesConfig
from ..engine.probe import ModelProbe
from ..errors import ConfigError, DataError
from ..tasks.base import TaskMetrics
from .describe import describe_slice, image_property_columns
from .discover import Discovery, DiscoverySettings, discover_slices
from .export import slice_id
from .features import pooled_features
from .inputs import SliceInputs
from .result import FoundSlice, SliceColumn, SlicesRun

PROPERTY_CHUNK = 256  # images decoded at once for their pixel properties


def _inputs(sc: SlicesConfig, probe: ModelProbe, metrics: TaskMetrics, z: np.ndarray
            ) -> tuple[SliceInputs | None, np.ndarray, str]:
    """(inputs, rows of the scored set they cover, why not applicable)."""
    task, p = probe.task, probe.predictions
    rows = np.arange(p.n)
    if p.labels.ndim == 1 and "single_label" in task.provides:
        probs = p.probs if p.probs.shape[1] == len(task.classes) and np.allclose(p.probs.sum(1), 1.0, atol=1e-4) \
            else None
        correct = (p.preds == p.labels).astype(np.float64)
        return SliceInputs(z, correct, "accuracy", True, p.labels.astype(np.int64), probs), rows, ""
    dice = getattr(metrics, "image_dice", None)  # a segmentation (its labels are the classes present: not sliced)
    if dice is not None:
        dice = np.asarray(dice, dtype=np.float64)
        keep = np.flatnonzero(np.isfinite(dice))
        if len(keep) < 4:
            return None, rows, f"{len(keep)} images have a per-image Dice; slice discovery needs at least 4"
        return SliceInputs(z[keep], dice[keep], "Dice", True), keep, ""
    if p.labels.ndim == 2:
        if sc.label is None:
            return None, rows, (f"a multi-label audit slices one label's correctness: set slices.label to one of "
                                f"{', '.join(task.classes)}")
        k = list(task.classes).index(sc.label)
        truth, score = p.labels[:, k].astype(np.int64), np.clip(p.probs[:, k], 0.0, 1.0)
        correct = (p.preds[:, k] == truth).astype(np.float64)
        return SliceInputs(z, correct, "accuracy", True, truth, np.stack([1.0 - score, score], axis=1)), rows, ""
    return None, rows, f"task {task.name!r} has no per-sample metric slice discovery can read"


def second_embedding(path: Path, ids: np.ndarray) -> np.ndarray:
    """The rows of ``path`` (.npz: 'ids', 'vectors'; no pickle) for the samples ``ids``, in their order."""
    try:
        with np.load(path, allow_pickle=False) as f:
            have, vectors = f["ids"].astype(str), np.asarray(f["vectors"], dtype=np.float64)
    except (OSError, ValueError, KeyError) as e:
        raise DataError(f"slices.second_embedding: {path}: {e} (expected an .npz with arrays 'ids' and "
                        "'vectors')") from None
    if vectors.ndim != 2 or len(vectors) != len(have):
        raise DataError(f"slices.second_embedding: {path}: 'vectors' {vectors.shape} needs one row per id "
                        f"({len(have)})")
    where = {str(i): k for k, i in enumerate(have)}
    missing = [str(i) for i in ids if str(i) not in where]
    if missing:
        raise DataError(f"slices.second_embedding: {path}: no row for sample {missing[0]!r} ({len(missing)} missing)")
    return vectors[[where[str(i)] for i in ids]]


def _images(probe: ModelProbe, ids: list[str]) -> tuple[np.ndarray, ...]:
    """The samples as (H, W, 3) [0, 1] arrays (the model's inputs with mean/std undone)."""
    if not ids:
        return ()
    x = probe.images(ids).double()
    mean = np.asarray(probe.preprocess.mean, dtype=np.float64).reshape(1, -1, 1, 1)
    std = np.asarray(probe.preprocess.std, dtype=np.float64).reshape(1, -1, 1, 1)
    a = np.clip(x.numpy() * std + mean, 0.0, 1.0).transpose(0, 2, 3, 1)
    return tuple(np.repeat(i, 3, axis=2) if i.shape[2] == 1 else i[..., :3] for i in a)


def _columns(sc: SlicesConfig, probe: ModelProbe, rows: np.ndarray) -> dict[str, np.ndarray]:
    """The metadata columns (and with ``image_properties`` the pixel properties, as "image <property>") that may
    describe a slice, at ``rows``."""
    meta = probe.predictions.metadata
    names = list(meta.columns) if sc.columns is None else sc.columns
    unknown = [c for c in names if c not in meta.columns]
    if unknown:
        raise ConfigError(f"slices.columns: unknown metadata column {unknown[0]!r} (the manifest has "
                          f"{', '.join(map(str, meta.columns)) or 'none'})")
    out = {str(c): meta[c].to_numpy()[rows] for c in names}
    if sc.image_properties:
        ids = [str(i) for i in probe.predictions.ids[rows]]
        parts = [image_property_columns(np.stack(_images(probe, ids[s:s + PROPERTY_CHUNK])))
                 for s in range(0, len(ids), PROPERTY_CHUNK)]
        out.update({f"image {k}": np.concatenate([p[k] for p in parts]) for k in (parts[0] if parts else {})})
    return out


def _found(d: Discovery, sc: SlicesConfig, probe: ModelProbe, ids: np.ndarray, columns: dict[str, np.ndarray],
           seed: int) -> tuple[FoundSlice, ...]:
    out = []
    for s in d.slices:
        t = s.test
        drawn = s.significant and sum(o.significant for o in out) < sc.shown  # described and drawn
        desc = describe_slice(d, s, columns, seed, sc.typical) if drawn else None
        typical = [str(i) for i in ids[desc.typical]] if desc is not None else []
        below = d.overall_metric - t.metric if d.higher_is_better else t.metric - d.overall_metric
        out.append(FoundSlice(
            s.rank, slice_id(s.rank), s.n, t.metric, t.metric_ci, t.rest_metric, t.gap, t.gap_ci, float(below),
            t.p_value, s.p_adjusted, s.significant, tuple(str(i) for i in ids[s.members]), tuple(typical),
            tuple(SliceColumn(c.column, c.auc, c.ci95) for c in desc.columns) if desc is not None else (),
            _images(probe, typical)))
    return tuple(out)


def run_slices(cfg: AuditConfig, probe: ModelProbe, metrics: TaskMetrics) -> SlicesRun | None:
    """What [slices] asks for (None when it is not configured)."""
    sc = cfg.slices
    if sc is None:
        return None
    seed = sc.seed if sc.seed is not None else cfg.seed
    p = probe.predictions
    if sc.label is not None and sc.label not in probe.task.classes:
        raise ConfigError(f"slices.label: unknown label {sc.label!r} (the audit's classes are "
                          f"{', '.join(probe.task.classes)})")
    if p.features is not None:
        z, embedding = np.asarray(p.features, dtype=np.float64), "the input of the model's last nn.Linear"
    else:  # e.g. a fully convolutional net: one extra pass for its pooled last convolution
        pooled, embedding = pooled_features(probe)
        if pooled is None:
            return SlicesRun("not_applicable", embedding)
        z = pooled
    inputs, rows, why = _inputs(sc, probe, metrics, z)
    if inputs is None:
        return SlicesRun("not_applicable", why)
    if sc.second_embedding is not None:
        extra = second_embedding(cfg.resolve(sc.second_embedding), p.ids[rows])
        inputs = replace(inputs, extra_embedding=extra)
        embedding += f", and {sc.second_embedding} beside it"
    settings = DiscoverySettings(n_components=sc.n_components, n_pca=sc.n_pca, fit_fraction=sc.fit_fraction,
                                 min_size=sc.min_size, alpha=sc.alpha, correction=sc.correction)
    columns = _columns(sc, probe, rows)
    d = discover_slices(inputs, np.random.default_rng(seed), settings)
    slices = _found(d, sc, probe, p.ids[rows], columns, seed)
    return SlicesRun("measured", d.method(), inputs.metric_name, inputs.higher_is_better, sc.label, inputs.n,
                     int((~d.fit_mask).sum()), d.overall_metric, sc.min_size, sc.alpha, sc.correction, seed, slices,
                     p.n - len(rows), embedding)
