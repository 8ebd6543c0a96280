"""Model-level views as plain data: penultimate features, 2-D embeddings, per-layer linear probes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

import numpy as np
import torch
from torch import nn

from ..errors import ExplainerError
from ..explainers._common import capture
from ..explainers.layers import last_linear, named_module

Batches = torch.Tensor | Iterable[torch.Tensor] | Iterable[tuple[torch.Tensor, ...]]


def _device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def _iter_batches(data: Batches, batch_size: int = 64) -> Iterable[tuple[torch.Tensor, torch.Tensor | None]]:
    """(images, labels or None) per batch from a tensor or an iterable of tensors / (x, y, ...) tuples."""
    if isinstance(data, torch.Tensor):
        for s in range(0, data.shape[0], batch_size):
            yield data[s:s + batch_size], None
        return
    for b in data:
        if isinstance(b, torch.Tensor):
            yield b, None
        else:
            yield b[0], (torch.as_tensor(b[1]) if len(b) > 1 else None)


def pool_features(a: torch.Tensor) -> torch.Tensor:
    """(B, C, h, w) -> global average pool (B, C); tokens (B, N, D) -> mean token (B, D); (B, D) unchanged."""
    if a.dim() == 4:
        return a.mean(dim=(2, 3))
    return a.mean(dim=1) if a.dim() == 3 else a.flatten(1)


def layer_features(
    model: nn.Module, data: Batches, layers: Sequence[str]
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """({layer: (N, D) pooled features}, labels from the batches or None), in no_grad."""
    dev = _device(model)
    mods = {n: named_module(model, n) for n in layers}
    feats: dict[str, list[np.ndarray]] = {n: [] for n in layers}
    labels: list[np.ndarray] = []
    with torch.no_grad():
        for x, y in _iter_batches(data):
            _, acts = capture(model, mods, x.to(dev), stop_early=False)
            for n in layers:
                feats[n].append(pool_features(acts[n]).float().cpu().numpy())
            if y is not None:
                labels.append(y.cpu().numpy())
    return {n: np.concatenate(v) for n, v in feats.items()}, (np.concatenate(labels) if labels else None)


def penultimate_features(model: nn.Module, x_batches: Batches) -> np.ndarray:
    """(N, D) inputs of the last nn.Linear (the classifier's feature vectors)."""
    _, fc = last_linear(model)
    dev = _device(model)
    out: list[np.ndarray] = []
    grabbed: list[torch.Tensor] = []
    handle = fc.register_forward_pre_hook(lambda _m, args: grabbed.append(args[0].detach()))
    try:
        with torch.no_grad():
            for x, _ in _iter_batches(x_batches):
                grabbed.clear()
                model(x.to(dev))
                out.append(grabbed[0].flatten(1).float().cpu().numpy())
    finally:
        handle.remove()
    return np.concatenate(out)


def embed_2d(features: np.ndarray, method: Literal["pca", "tsne"] = "pca", seed: int = 0) -> np.ndarray:
    """(N, D) -> (N, 2) with PCA or t-SNE (perplexity clamped below N); fewer than 3 points are an error."""
    x = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    n = x.shape[0]
    if n < 3:
        raise ExplainerError(f"a 2-D embedding needs at least 3 samples, got {n}")
    if method == "pca":
        from sklearn.decomposition import PCA

        k = min(2, n, x.shape[1])
        emb = PCA(n_components=k, random_state=seed).fit_transform(x)
        return np.pad(emb, ((0, 0), (0, 2 - k))) if k < 2 else emb
    from sklearn.manifold import TSNE

    perplexity = float(min(30.0, max(1.0, (n - 1) / 3)))
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)


def linear_probe_per_layer(
    model: nn.Module, loader_or_tensor: Batches, labels: Sequence[int] | np.ndarray | torch.Tensor | None,
    layers: Sequence[str], seed: int = 0,
) -> dict[str, float]:
    """{layer: mean cross-validated accuracy of a logistic regression on its GAP-pooled features}.

    Alain & Bengio 2016. StratifiedKFold with up to 5 splits, clamped to the smallest class count
    (at least 2 samples per class are needed). ``labels`` may be None when the batches carry them.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    feats, batch_labels = layer_features(model, loader_or_tensor, layers)
    y = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels) if labels is not None else batch_labels
    if y is None:
        raise ExplainerError("linear probe: no labels given and the batches carry none")
    _, counts = np.unique(y, return_counts=True)
    if len(counts) < 2 or counts.min() < 2:
        raise ExplainerError("linear probe needs at least two classes with at least 2 samples each")
    cv = StratifiedKFold(n_splits=int(min(5, counts.min())), shuffle=True, random_state=seed)
    out = {}
    for name, x in feats.items():
        if len(x) != len(y):
            raise ExplainerError(f"linear probe: {len(x)} feature rows but {len(y)} labels")
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        out[name] = float(cross_val_score(clf, x, y, cv=cv).mean())
    return out
