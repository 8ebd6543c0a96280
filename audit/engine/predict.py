"""The scoring stage: score the held-out set once through the engine, or reuse the cached scores (after a spot check),
or resume an interrupted run."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from ..config import AuditConfig
from ..errors import DataError
from ..loading.dataset import ImageDataset
from ..loading.identity import model_identity
from ..loading.model import LoadedModel
from ..loading.preprocess import Preprocess
from ..loading.records import HeldOutSet, SampleRecord
from ..products import Predictions, SkippedSample
from . import cache
from .base import Engine, PredictOutput, ScoringOptions
from .sealed import CacheLog, CacheNote


@dataclass(frozen=True)
class Scored:
    """The scoring stage's product."""

    predictions: Predictions
    skipped: tuple[SkippedSample, ...]
    records: tuple[SampleRecord, ...]  # the scored samples' records, in prediction-row order
    dataset_mean: torch.Tensor | None  # mean model input (C, H, W)
    cache_key: str  # "" when the cache is off
    from_cache: bool
    resumed_at: int  # first row scored in this run when an interrupted run was resumed, else 0
    # cache entries found damaged or failing the spot check, discarded and recomputed; the attribution stores of the
    # probe opened on this product add theirs as later stages read them (results.json provenance.cache_notes)
    cache_log: CacheLog = field(default_factory=CacheLog)


def progress_bars() -> bool:
    return sys.stderr.isatty()


def check_classes_present(preds: Predictions, classes: tuple[str, ...], source: str) -> None:
    """Every class needs scored samples, or per-class figures are meaningless (all of a class may be skipped).
    Multi-label sets note a label without positives instead (its ranking figures are reported unavailable)."""
    if preds.labels.ndim != 1:
        return
    counts = np.bincount(preds.labels, minlength=len(classes))
    empty = [classes[i] for i in np.flatnonzero(counts == 0)]
    if empty:
        raise DataError(f"{source}: class(es) with no held-out samples: {', '.join(empty)}")


SPOT_CHECK_ROWS = 4
SPOT_CHECK_ATOL = 1e-4  # scores; batch composition changes float32 results by ~1e-7


def spot_check(engine: Engine, heldout: HeldOutSet, preprocess: Preprocess, out: PredictOutput, seed: int) -> float:
    """Recompute a few seeded rows of a cached scoring result; the largest absolute difference of the scores."""
    n = out.predictions.n
    rows = np.sort(np.random.default_rng([seed, 5]).choice(n, size=min(SPOT_CHECK_ROWS, n), replace=False))
    ds = ImageDataset([heldout.records[int(out.kept_rows[r])] for r in rows], preprocess)
    x = torch.stack([ds[i][1] for i in range(len(rows))])  # type: ignore[misc]
    return float(np.abs(engine.outputs(x) - out.predictions.probs[rows]).max())


def predict(cfg: AuditConfig, heldout: HeldOutSet, preprocess: Preprocess, engine: Engine, loaded: LoadedModel,
            images_sha256: str) -> Scored:
    """Score every held-out sample once; reuse the cached scores of identical inputs (after a spot check of a few
    recomputed rows), resume an interrupted run (from the scoring checkpoint, or from what an engine that keeps its
    own progress wrote under the same key)."""
    folder = cfg.resolve(cfg.cache.dir)
    key = ""
    out = None
    notes = CacheLog()
    if cfg.cache.enabled:
        compute, device = engine.cache_identity()
        key = cache.prediction_key(cache.model_digest(engine.model), model_identity(cfg, loaded), images_sha256,
                                   cache.listing_digest(heldout), cfg.data.model_dump(mode="json"),
                                   compute, device)
        out = cache.load(folder, key, notes)
        if out is not None:
            diff = spot_check(engine, heldout, preprocess, out, cfg.seed)
            if not diff <= SPOT_CHECK_ATOL:
                notes.add(CacheNote(cache.STORE, f"predictions-{key}.npz",
                                  f"{SPOT_CHECK_ROWS} recomputed rows differ by up to {diff:.2g} (something outside "
                                  "the cache key changed)", "discarded; the held-out set was scored again"))
                out = None
    from_cache = out is not None
    resumed_at = 0
    if out is None:
        own = engine.own_progress
        progress = cache.load_progress(folder, key, notes) if cfg.cache.enabled and not own else None
        checkpoint: Callable | None = (lambda p: cache.save_progress(folder, key, p)) \
            if cfg.cache.enabled and not own else None
        options = ScoringOptions(batch_size=cfg.data.batch_size, num_workers=cfg.data.num_workers,
                                 skip_bad=cfg.data.on_bad_image == "skip", progress=progress_bars(),
                                 checkpoint=checkpoint, checkpoint_seconds=cfg.cache.checkpoint_seconds, key=key)
        out = engine.score(heldout, preprocess, options, resume=progress)
        resumed_at = progress.next_row if progress is not None else out.resumed_rows
        for n in out.cache_notes:  # an engine that keeps its own progress checks its own files
            notes.add(n)
        if cfg.cache.enabled:
            cache.save(folder, key, out)
            cache.clear_progress(folder, key)
            engine.discard_progress(key)
    preds = out.predictions
    check_classes_present(preds, heldout.classes, heldout.source)
    mean = (out.input_sum / preds.n).float() if out.input_sum is not None else None
    return Scored(predictions=preds, skipped=out.skipped,
                  records=tuple(heldout.records[int(i)] for i in out.kept_rows), dataset_mean=mean,
                  cache_key=key, from_cache=from_cache, resumed_at=resumed_at, cache_log=notes)
