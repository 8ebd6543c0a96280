"""The explain stage: every configured explainer on the picks; an explainer that cannot run is kept with the
reason (never silently dropped)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from ..engine.predict import progress_bars
from ..engine.probe import ModelProbe
from ..errors import ExplainerError
from ..explainers import registry as explainer_registry
from ..products import AttributionSet
from .store import StoredMaps, from_attributions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExplainerOutcome:
    name: str
    title: str
    legend: str
    signed: bool
    status: str  # "ok" | "unavailable"
    reason: str = ""
    maps: AttributionSet | None = None
    params: Mapping[str, Any] = field(default_factory=dict)  # parameters as run (default layer resolved)


def resolved_params(probe: ModelProbe, name: str, ids: Sequence[str]) -> dict[str, Any]:
    """The explainer's validated parameters with the run-time choices filled in: the default target layer
    (``layer`` / ``layers`` left unset) as ``explainers.layers.last_conv`` resolves it on the first pick, and
    an occlusion window/stride clamped to the image as captum received them."""
    from ..explainers.layers import last_conv

    ex = probe.explainer(name)
    params: dict[str, Any] = ex.params.model_dump(mode="json")
    try:
        if ("layer" in params and not params["layer"]) or ("layers" in params and not params["layers"]):
            x = probe.images(list(ids[:1])).to(probe.device)
            layer = last_conv(probe.model, x)[0] if len(x) else None
            key = "layer" if "layer" in params else "layers"
            params[key] = layer if key == "layer" else [layer]
            params[f"{key}_source"] = "default (resolved at run time)"
        if name == "occlusion" and probe.preprocess.size is not None:
            h, w = probe.preprocess.size
            params["window_used"] = [min(params["window"], h), min(params["window"], w)]
            params["stride_used"] = [min(params["stride"], params["window_used"][0]),
                                     min(params["stride"], params["window_used"][1])]
    except Exception as e:  # noqa: BLE001 - recording parameters must never fail an audit whose maps exist
        params["resolution_note"] = f"default layer not resolved: {e}"
    return params


@dataclass(frozen=True)
class Explanations:
    """The explain stage's product: one outcome per configured explainer, and the maps kept for maps.npz."""

    outcomes: tuple[ExplainerOutcome, ...]
    kept: dict[str, StoredMaps]

    def names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.outcomes)


def item_targets(probe: ModelProbe, items: Sequence[tuple[str, int | None]], mode: str) -> np.ndarray:
    """The output explained for each (sample, target) item: its own target, else the task's for ``mode``."""
    default = probe.targets_for([sid for sid, _ in items], mode) if items else np.zeros(0, dtype=np.int64)
    return np.array([d if t is None else t for (_, t), d in zip(items, default, strict=True)], dtype=np.int64)


def _outcome(probe: ModelProbe, name: str, ids: list[str], target: np.ndarray) -> ExplainerOutcome:
    cls = explainer_registry()[name]
    try:
        maps = probe.attributions(name, ids, target)
        if not np.isfinite(maps.maps).all():
            raise ExplainerError("the maps contain NaN or infinite values")
        return ExplainerOutcome(name, cls.title, cls.legend, cls.signed, "ok", maps=maps,
                                params=resolved_params(probe, name, ids))
    except Exception as e:  # noqa: BLE001 - attribution code on a user's model fails in arbitrary ways (captum raises
        # AssertionError when a hooked layer never runs); the explainer is then reported unavailable with the reason
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        log.warning("explainer %s unavailable: %s", name, reason)
        return ExplainerOutcome(name, cls.title, cls.legend, cls.signed, "unavailable", reason=reason)


def map_groups(probe: ModelProbe, maps: AttributionSet) -> np.ndarray:
    """The class each map is grouped under when maps are compared per class: the sample's true class, or for a
    multi-label sample the label the map explains (a sample with two findings has a map for each)."""
    labels = probe.predictions.labels[probe.predictions.index_of(list(maps.ids))]
    return labels if labels.ndim == 1 else np.asarray(maps.targets, dtype=np.int64)


def kept_maps(probe: ModelProbe, outcomes: Sequence[ExplainerOutcome]) -> dict[str, StoredMaps]:
    """The report's maps with labels and ROI shares, as written to maps.npz and compared with a baseline."""
    out = {}
    for o in outcomes:
        if o.maps is not None:
            labels = map_groups(probe, o.maps)
            out[o.name] = from_attributions(o.maps, labels, probe.roi)
    return out


def explain_picks(probe: ModelProbe, methods: Sequence[str], target: str,
                  items: Sequence[tuple[str, int | None]]) -> Explanations:
    """Maps of every method for the picked (sample, target) items (cached per sample, target and method in the
    probe); an item without its own target is explained for the task's ``target`` ("predicted" or "label")."""
    ids = [sid for sid, _ in items]
    targets = item_targets(probe, items, target)
    outcomes = tuple(_outcome(probe, name, ids, targets)
                     for name in tqdm(methods, desc="explaining", unit="method", disable=not progress_bars(),
                                      leave=False))
    return Explanations(outcomes=outcomes, kept=kept_maps(probe, outcomes))
