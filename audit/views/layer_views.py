"""Layer views for a few picked samples: channel-summed activations and feature inversions, one column per layer
(the "conv1 … conv5" rows reviewers expect), computed only when those methods are configured."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..engine.probe import ModelProbe
from ..explainers import build_explainer
from ..explainers import registry as explainer_registry
from ..loading.preprocess import Preprocess
from .model_views import probe_layers


@dataclass(frozen=True)
class LayerViews:
    layers: tuple[str, ...]
    ids: tuple[str, ...]
    activations: dict[str, np.ndarray]  # layer -> (n, H, W)
    inversions: dict[str, np.ndarray]  # layer -> (n, H, W, 3) display images in [0, 1]
    inversion_gain: dict[str, float]  # layer -> mean relative reduction of the feature distance
    notes: tuple[str, ...] = ()


def compute_layer_views(probe: ModelProbe, preprocess: Preprocess, methods: list[str], options: dict[str, dict],
                        ids: list[str], max_samples: int = 3) -> LayerViews | None:
    reg = explainer_registry()
    wanted = [name for name, cls in reg.items() if cls.layer_view and name in methods]  # registry order
    if not wanted or not ids:
        return None
    ids = ids[:max_samples]
    x = probe.images(ids).to(probe.device)
    acts: dict[str, np.ndarray] = {}
    invs: dict[str, np.ndarray] = {}
    gains: dict[str, float] = {}
    notes: list[str] = []
    layers: list[str] = []
    for name in wanted:
        opts = dict(options.get(name, {}))
        opts.setdefault("layers", probe_layers(probe.model, x))
        try:
            ex = build_explainer(name, opts)
            layers = list(opts["layers"])
            if ex.layer_view == "activations":
                acts = {k: v.numpy() for k, v in ex.maps(probe.model, x).items()}  # type: ignore[attr-defined]
            elif ex.layer_view == "inversions":
                for layer, (recon, d0, d1) in ex.reconstructions(probe.model, x).items():  # type: ignore[attr-defined]
                    invs[layer] = np.stack([preprocess.unnormalize(r) for r in recon])
                    gains[layer] = float((1 - (d1 / d0.clamp_min(1e-12))).mean())
        except Exception as e:  # noqa: BLE001 - a view that cannot be drawn on this model is noted with the reason
            notes.append(f"{name}: {str(e).splitlines()[0]}")
    return LayerViews(tuple(layers), tuple(ids), acts, invs, gains, tuple(notes))
