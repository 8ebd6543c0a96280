"""The explain stage: every configured explainer on the picks; an explainer that cannot run is kept with the
reason (never silently dropped)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from ..engine.predict import progress_bars
from ..engine.probe import ModelProbe
from ..errors import ExplainerError
from ..explainers import registry as explainer_registry
from ..types import AttributionSet
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


@dataclass(frozen=True)
class Explanations:
    """The explain stage's product: one outcome per configured explainer, and the maps kept for maps.npz."""

    outcomes: tuple[ExplainerOutcome, ...]
    kept: dict[str, StoredMaps]

    def names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.outcomes)


def _outcome(probe: ModelProbe, name: str, ids: list[str], target: str) -> ExplainerOutcome:
    cls = explainer_registry()[name]
    try:
        maps = probe.attributions(name, ids, target)
        if not np.isfinite(maps.maps).all():
            raise ExplainerError("the maps contain NaN or infinite values")
        return ExplainerOutcome(name, cls.title, cls.legend, cls.signed, "ok", maps=maps)
    except Exception as e:  # noqa: BLE001 - attribution code on a user's model fails in arbitrary ways (captum raises
        # AssertionError when a hooked layer never runs); the explainer is then reported unavailable with the reason
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        log.warning("explainer %s unavailable: %s", name, reason)
        return ExplainerOutcome(name, cls.title, cls.legend, cls.signed, "unavailable", reason=reason)


def kept_maps(probe: ModelProbe, outcomes: Sequence[ExplainerOutcome]) -> dict[str, StoredMaps]:
    """The report's maps with labels and ROI shares, as written to maps.npz and compared with a baseline."""
    out = {}
    for o in outcomes:
        if o.maps is not None:
            labels = probe.predictions.labels[probe.predictions.index_of(list(o.maps.ids))]
            out[o.name] = from_attributions(o.maps, labels, probe.roi)
    return out


def explain_picks(probe: ModelProbe, methods: Sequence[str], target: str, ids: Sequence[str]) -> Explanations:
    """Maps of every method for the picked samples (cached per sample and method in the probe)."""
    outcomes = tuple(_outcome(probe, name, list(ids), target)
                     for name in tqdm(methods, desc="explaining", unit="method", disable=not progress_bars(),
                                      leave=False))
    return Explanations(outcomes=outcomes, kept=kept_maps(probe, outcomes))
