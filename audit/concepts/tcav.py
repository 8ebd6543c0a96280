"""TCAV on tensors (Kim et al. 2018): CAVs per concept and layer against N random counterexample sets, random CAVs
(random set i+1 against random set i) for the null distribution, and per class the share of the class's inputs
whose logit increases along each CAV (the sign of the directional derivative).

``run_tcav`` works on tensors and index arrays only, so it can be tested on a hand-built network; ``stage.py``
brings the audit's images to it and the statistics to its scores.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .activations import Pooling, directional_derivatives, layer_activations
from .cav import ClassifierKind, RowSpace, train_cav, unit

RANDOM = "(random)"  # the row of the random CAVs in every per-layer table


@dataclass(frozen=True)
class LayerScores:
    """Everything TCAV measured at one layer. Rows of the (k, N) tables: the concepts in order, then RANDOM."""

    layer: str
    dim: int  # length of the activation vectors the CAVs live in
    accuracy: np.ndarray  # (k, N) held-out accuracy of each CAV's classifier
    scores: Mapping[int, np.ndarray]  # group -> (k, N) TCAV score: share of the group's inputs with S > 0
    mean_derivative: Mapping[int, np.ndarray]  # group -> (k, n_inputs) directional derivative averaged over runs
    n_zero: Mapping[int, np.ndarray]  # group -> (k,) inputs whose derivative was exactly 0 in some run
    null_directions: np.ndarray  # (k, N) bool: the fit found no direction (all-zero weights)


@dataclass(frozen=True)
class TCAVRaw:
    concepts: tuple[str, ...]
    layers: tuple[LayerScores, ...]
    runs: int
    seconds: dict[str, float] = field(default_factory=dict)  # activations, cavs, gradients
    passes: dict[str, int] = field(default_factory=dict)  # images through forward-only / forward+backward passes

    def rows(self) -> tuple[str, ...]:
        return (*self.concepts, RANDOM)


def _layer_chunk(model: nn.Module, modules: Mapping[str, nn.Module], layers: Sequence[str], x1: torch.Tensor,
                 pooling: Pooling, device: torch.device, n_images: int, budget: int) -> list[str]:
    """The first layers of ``layers`` whose activations for ``n_images`` images fit ``budget`` bytes (at least
    one)."""
    dims = layer_activations(model, {name: modules[name] for name in layers}, x1, pooling, device)
    chunk: list[str] = []
    total = 0
    for name in layers:
        total += dims[name].shape[1] * 4 * n_images
        if chunk and total > budget:
            break
        chunk.append(name)
    return chunk


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def run_tcav(model: nn.Module, layers: Sequence[str], concepts: Mapping[str, torch.Tensor],
             random_pool: torch.Tensor, random_sets: Sequence[np.ndarray], class_inputs: Mapping[int, torch.Tensor],
             *, concept_sets: Mapping[str, Sequence[np.ndarray]] | None = None,
             target_model: nn.Module | None = None, targets: Mapping[int, int] | None = None,
             pooling: Pooling = "flatten", classifier: ClassifierKind = "sgd", seed: int = 0,
             device: torch.device | None = None, batch_size: int = 32, memory_budget: int = 1 << 30) -> TCAVRaw:
    """TCAV scores of every concept (images (n_c, C, H, W)) at every layer for every group's inputs.

    Run i trains each concept's CAV against random set i: ``random_sets`` are N index arrays into ``random_pool``
    (P, C, H, W). ``concept_sets[c][i]`` picks the concept images of run i (default: all, every run). The null
    distribution comes from N random CAVs, random set i+1 (cyclically) against random set i: each with its own
    positive set, so that the quirks of one random "concept" do not shift every null score (the reference
    implementation's run without a fixed random counterpart).
    ``targets``: the output column whose logit is differentiated for each group (default: the group index).
    ``target_model`` runs in the gradient pass (default ``model``), whose modules the layer names refer to.
    Activations of several layers are gathered in one pass while they fit ``memory_budget`` bytes."""
    device = device or torch.device("cpu")
    target_model = target_model if target_model is not None else model
    modules = dict(model.named_modules())
    names = tuple(concepts)
    n_runs = len(random_sets)
    if n_runs < 3:
        raise ValueError(f"TCAV needs at least 3 random counterexample sets (the null pairs set i+1 with set i); "
                         f"got {n_runs}")
    runs_of = {c: list(concept_sets[c]) if concept_sets is not None and c in concept_sets
               else [np.arange(len(concepts[c]))] * n_runs for c in names}
    if any(len(v) != n_runs for v in runs_of.values()):
        raise ValueError(f"concept_sets need one index array per run ({n_runs})")
    seconds = {"activations": 0.0, "cavs": 0.0, "gradients": 0.0}
    passes = {"forward_images": 0, "forward_backward_images": 0}
    directions: dict[str, torch.Tensor] = {}
    per_layer: dict[str, tuple[int, np.ndarray, np.ndarray]] = {}
    used = np.unique(np.concatenate(list(random_sets)))  # pool images some set draws
    pool_x = random_pool[torch.as_tensor(used)]  # rows: the pool images in ``used`` order
    n_images = sum(len(concepts[c]) for c in names) + len(used)
    k = len(names) + 1
    layer_acts: dict[str, dict[str, np.ndarray]] = {}
    for layer in layers:
        if layer not in layer_acts:  # the activations of as many layers as fit the budget, in one pass
            t0 = time.perf_counter()
            chunk = _layer_chunk(model, modules, list(layers)[list(layers).index(layer):], pool_x[:1], pooling,
                                 device, n_images, memory_budget)
            mods = {name: modules[name] for name in chunk}
            per_set = {c: layer_activations(model, mods, concepts[c], pooling, device, batch_size) for c in names}
            per_set[RANDOM] = layer_activations(model, mods, pool_x, pooling, device, batch_size)
            for name in chunk:
                layer_acts[name] = {c: per_set[c][name] for c in per_set}
            passes["forward_images"] += n_images
            seconds["activations"] += time.perf_counter() - t0
        current = layer_acts.pop(layer)
        t0 = time.perf_counter()
        stacked = np.concatenate([current[c] for c in (*names, RANDOM)])
        del current
        dim = stacked.shape[1]
        space = RowSpace(stacked) if dim > len(stacked) else None
        z = space.coords if space is not None else stacked
        starts = dict(zip((*names, RANDOM), np.cumsum([0, *(len(concepts[c]) for c in names)]), strict=True))
        counters = [starts[RANDOM] + np.searchsorted(used, s) for s in random_sets]  # rows of z
        acc = np.zeros((k, n_runs))
        weights = np.zeros((k * n_runs, z.shape[1]))
        for r in range(k):
            for i in range(n_runs):
                pos = counters[(i + 1) % n_runs] if r == k - 1 else starts[names[r]] + runs_of[names[r]][i]
                cav = train_cav(z[pos], z[counters[i]], classifier, seed=_seed(seed, r, i))
                acc[r, i] = cav.accuracy
                weights[r * n_runs + i] = cav.weights
        dirs = unit(space.lift(weights) if space is not None else weights)  # (k * N, D)
        directions[layer] = torch.from_numpy(dirs)
        per_layer[layer] = (dim, acc, ~np.any(dirs != 0, axis=1).reshape(k, n_runs))
        del stacked, z, space
        seconds["cavs"] += time.perf_counter() - t0
    t0 = time.perf_counter()
    scores: dict[str, dict[int, np.ndarray]] = {layer: {} for layer in layers}
    mean_dd: dict[str, dict[int, np.ndarray]] = {layer: {} for layer in layers}
    zeros: dict[str, dict[int, np.ndarray]] = {layer: {} for layer in layers}
    for g, x in class_inputs.items():
        target = targets[g] if targets is not None else g
        dd = directional_derivatives(model, target_model, list(layers), directions, x, target, pooling, device,
                                     batch_size)
        passes["forward_backward_images"] += len(x)
        for layer in layers:
            s = dd[layer].reshape(len(x), k, n_runs)  # (n, k, N)
            scores[layer][g] = (s > 0).mean(axis=0) if len(x) else np.full((k, n_runs), np.nan)
            mean_dd[layer][g] = s.mean(axis=2).T  # (k, n)
            zeros[layer][g] = (s == 0).any(axis=2).sum(axis=0)
    seconds["gradients"] += time.perf_counter() - t0
    out = tuple(LayerScores(layer, per_layer[layer][0], per_layer[layer][1], scores[layer], mean_dd[layer],
                            zeros[layer], per_layer[layer][2]) for layer in layers)
    return TCAVRaw(names, out, n_runs, seconds, passes)
