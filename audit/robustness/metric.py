"""The task's own metric on a table of perturbed answers: the same ``Task.metrics`` the audit reports, read at
``Task.key_metric`` with its interval, and per group (``Task.group_metric``, or each class's recall for
single-label tasks). Perturbed scores get the task's decisions at the operating point fitted on the clean
held-out set (never refitted on perturbed data)."""

from __future__ import annotations

import zlib
from dataclasses import replace

import numpy as np

from ..errors import AuditError
from ..products import Predictions
from ..scoring.ranking import wilson
from ..tasks.base import Task
from .result import Value


def rows_of(preds: Predictions, rows: np.ndarray) -> Predictions:
    """The prediction table restricted to ``rows`` (in that order)."""
    rows = np.asarray(rows, dtype=np.int64)

    def take(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else np.asarray(a)[rows]

    return Predictions(ids=preds.ids[rows], labels=preds.labels[rows], probs=preds.probs[rows],
                       metadata=preds.metadata.iloc[rows].reset_index(drop=True), features=take(preds.features),
                       decisions=take(preds.decisions), dense=take(preds.dense), dense_truth=take(preds.dense_truth))


def decisions_for(task: Task, clean: Predictions, scores: np.ndarray) -> np.ndarray | None:
    """The task's answers for new scores at its fitted operating point: None where the clean table has none (the
    argmax), else ``Task.decide`` for every output (per label for a (N, K) table; the one output decided "yes"
    for a (N,) one)."""
    if clean.decisions is None:
        return None
    n = len(scores)
    yes = np.stack([task.decide(scores, np.full(n, t)) for t in range(len(task.classes))], axis=1)
    return yes.astype(np.int64) if clean.decisions.ndim == 2 else yes.argmax(axis=1).astype(np.int64)


def with_answers(task: Task, clean: Predictions, scores: np.ndarray, dense: np.ndarray | None = None
                 ) -> Predictions:
    """``clean`` (the same samples) with perturbed scores, their decisions and per-pixel answers (kept only when
    given: the clean maps never stand in for perturbed ones)."""
    return replace(clean, probs=scores, decisions=decisions_for(task, clean, scores), dense=dense,
                   dense_truth=clean.dense_truth if dense is not None else None, features=None)


def needs_dense(task: Task, clean: Predictions, seed: int) -> bool:
    """Whether the key metric reads per-pixel answers (a segmentation's IoU): the metric of the clean table
    without them fails. Anomaly maps, which image AUROC does not read, are then not computed under corruption."""
    if clean.dense is None:
        return False
    try:
        task.metrics(replace(clean, dense=None, dense_truth=None), np.random.default_rng(seed)).scalar(task.key_metric)
    except (AuditError, KeyError, ValueError):
        return True
    return False


def rng_for(seed: int, salt: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(salt.encode())])


def measure(task: Task, preds: Predictions, seed: int, salt: str) -> tuple[Value, tuple[tuple[str, Value], ...]]:
    """The key metric of ``preds`` with its interval, and per group."""
    m = task.metrics(preds, rng_for(seed, salt))
    key = task.key_metric
    overall = Value(float(m.scalar(key)), m.interval(key), preds.n)
    groups: list[tuple[str, Value]] = []
    if task.group_metric:
        for g in task.groups():
            name = task.group_metric.format(group=g)
            groups.append((g, Value(float(m.scalar(name)), m.interval(name), preds.n)))
    elif "single_label" in task.provides and preds.labels.ndim == 1:
        right = task.outcome(preds)
        if right is not None:
            for k, g in enumerate(task.classes):
                mine = preds.labels == k
                n, hits = int(mine.sum()), int(np.asarray(right)[mine].sum())
                groups.append((g, Value(hits / n if n else float("nan"), wilson(hits, n) if n else None, n)))
    return overall, tuple(groups)
