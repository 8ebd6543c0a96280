"""One member of the family through the audit's own steps: built like the ``[model]`` it stands for, scored
through an engine of its own (the configured one: local, or Ray workers), its task fitted on its scores, then cut
to the rows it was not trained on. The mean ensemble is a model too (``ensemble.MeanEnsemble``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from torch import nn

from ..config import AuditConfig, FamilyMemberConfig, ModelConfig, member_model
from ..engine import start_engine
from ..engine.cache import model_digest
from ..engine.predict import Scored, predict
from ..engine.probe import ModelProbe, open_probe
from ..errors import DataError
from ..loading.model import LoadedModel, load_model
from ..loading.preprocess import Preprocess
from ..loading.records import HeldOutSet
from ..products import Predictions
from ..tasks.base import Task
from .ensemble import MeanEnsemble, ensemble_options


@dataclass(frozen=True)
class Scoring:
    """What the audit's held-out set, preprocessing and task are (shared by every member)."""

    cfg: AuditConfig
    heldout: HeldOutSet
    preprocess: Preprocess
    task: Task
    ids: np.ndarray  # the released model's prediction ids: every member must score the same samples
    images_sha256: str  # the held-out images' fingerprint (the prediction cache's key)


@dataclass(frozen=True)
class Scored1:
    """One member scored on every row: its fitted task, predictions and model service."""

    source: str
    digest: str
    task: Task
    predictions: Predictions
    probe: ModelProbe
    module: nn.Module


def subset(p: Predictions, rows: np.ndarray) -> Predictions:
    """The prediction table's ``rows``, in that order."""
    rows = np.asarray(rows, dtype=np.int64)

    def cut(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else a[rows]

    return Predictions(ids=p.ids[rows], labels=p.labels[rows], probs=p.probs[rows],
                       metadata=p.metadata.iloc[rows].reset_index(drop=True), features=cut(p.features),
                       decisions=cut(p.decisions), dense=cut(p.dense), dense_truth=cut(p.dense_truth))


def concat(parts: Sequence[Predictions]) -> Predictions:
    """Prediction tables one after another (features kept only when every part has them)."""

    def join(name: str) -> np.ndarray | None:
        arrays = [getattr(p, name) for p in parts]
        return None if any(a is None for a in arrays) else np.concatenate(arrays)

    return Predictions(ids=np.concatenate([p.ids for p in parts]), labels=np.concatenate([p.labels for p in parts]),
                       probs=np.concatenate([p.probs for p in parts]),
                       metadata=pd.concat([p.metadata for p in parts], ignore_index=True),
                       features=join("features"), decisions=join("decisions"), dense=join("dense"),
                       dense_truth=join("dense_truth"))


def cut_probe(probe: ModelProbe, rows: np.ndarray, preds: Predictions) -> ModelProbe:
    """The member's model service over its judged rows (maps and ROIs are cached per sample, so they are shared)."""
    if len(rows) == probe.predictions.n:
        return probe
    return replace(probe, records=tuple(probe.records[int(i)] for i in rows), predictions=preds)


def answers(p: Predictions) -> np.ndarray:
    """The task's answer per sample (per pixel when the task answers per pixel)."""
    if p.dense is not None and np.issubdtype(p.dense.dtype, np.integer):
        return p.dense
    return np.asarray(p.preds)


def _score(s: Scoring, cfg: AuditConfig, loaded: LoadedModel, task: Task) -> Scored1:
    engine = start_engine(cfg, loaded, task)
    scored: Scored = predict(cfg, s.heldout, s.preprocess, engine, loaded, s.images_sha256)
    if not np.array_equal(scored.predictions.ids, s.ids):
        engine.close()
        raise DataError(f"family member {cfg.model.name!r}: scored other samples than the released model "
                        f"({scored.predictions.n} against {len(s.ids)})")
    fitted, preds = task.fit(scored.predictions, scored.records, s.preprocess)
    engine.task = fitted
    probe = open_probe(cfg, s.preprocess, engine, replace(scored, predictions=preds))
    return Scored1(loaded.source, model_digest(engine.model), fitted, preds, probe, engine.model)


def score_member(s: Scoring, entry: FamilyMemberConfig) -> Scored1:
    """A ``[[family]]`` entry built, scored and fitted (AuditError naming what is wrong with its model)."""
    cfg = s.cfg.model_copy(update={"model": member_model(s.cfg.model, entry)})
    loaded = load_model(cfg, len(s.task.classes))
    return _score(s, cfg, loaded, s.task)


def score_ensemble(s: Scoring, modules: Sequence[nn.Module], names: Sequence[str]) -> Scored1:
    """The mean of ``modules``' scores as a model of its own, scored through the engine."""
    mc = s.cfg.model
    options = ensemble_options(s.task)
    model = ModelConfig(python="family mean ensemble", task=mc.task, output_kind=options.output_kind,
                        threshold=mc.threshold, operating_point=mc.operating_point, name="ensemble")
    cfg = s.cfg.model_copy(update={"model": model})
    ensemble = MeanEnsemble(modules, s.task).eval()
    loaded = LoadedModel(module=ensemble, source=f"mean of the scores of {', '.join(names)}", files=(),
                         pickled=False)
    return _score(s, cfg, loaded, type(s.task)(s.task.classes, options))
