"""Model-level views for the report: 2-D embeddings of penultimate features and per-layer linear probes."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..engine.probe import ModelProbe
from ..errors import AuditError
from ..explainers.layers import block_layers
from .features import embed_2d, linear_probe_per_layer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelViews:
    rows: np.ndarray  # sample rows (into predictions) shown
    embeddings: dict[str, np.ndarray] = field(default_factory=dict)  # method -> (n, 2)
    probe_accuracy: dict[str, float] = field(default_factory=dict)  # layer -> CV accuracy
    notes: tuple[str, ...] = ()


def probe_layers(model: nn.Module, inputs: torch.Tensor, max_layers: int = 5) -> list[str]:
    """Up to ``max_layers`` layers spread from input to output (convolutions in the order they run on ``inputs`` — a
    layer that never runs, such as an auxiliary head in eval mode, is not one — or a transformer's block inputs),
    the last one included."""
    convs = block_layers(model, inputs)
    if len(convs) <= max_layers:
        return convs
    idx = np.unique(np.linspace(0, len(convs) - 1, max_layers).round().astype(int))
    return [convs[i] for i in idx]


def compute_views(probe: ModelProbe, methods: list[str], layers: list[str] | None, max_samples: int,
                  probe_samples: int, seed: int) -> ModelViews:
    pred = probe.predictions
    rng = np.random.default_rng([seed, 7])
    rows = np.arange(pred.n)
    if pred.n > max_samples:
        rows = np.sort(rng.choice(pred.n, size=max_samples, replace=False))
    notes: list[str] = []
    emb: dict[str, np.ndarray] = {}
    if pred.features is None:
        notes.append("no penultimate features were gathered (the model has no nn.Linear head)")
    else:
        for m in methods:
            try:
                emb[m] = embed_2d(pred.features[rows], m, seed)  # type: ignore[arg-type]
            except (AuditError, ValueError) as e:
                notes.append(f"{m}: {e}")
    acc: dict[str, float] = {}
    if probe_samples > 0:
        prow = np.arange(pred.n)
        if pred.n > probe_samples:
            prow = np.sort(rng.choice(pred.n, size=probe_samples, replace=False))
        ids = [str(s) for s in pred.ids[prow]]
        try:
            x = probe.images(ids).to(probe.device)
            names = layers if layers else probe_layers(probe.model, x)
            if names:
                acc = linear_probe_per_layer(probe.model, x, pred.labels[prow], names, seed)
        except (AuditError, ValueError, RuntimeError) as e:
            notes.append(f"linear probe: {str(e).splitlines()[0]}")
    return ModelViews(rows=rows, embeddings=emb, probe_accuracy=acc, notes=tuple(notes))
