"""The views stage: what the report draws besides the grid's maps — each shown sample as the model saw it, the
maps behind each finding's evidence images, model-level views and layer views."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..config import AuditConfig
from ..engine.probe import ModelProbe
from ..errors import AuditError
from ..loading.preprocess import Preprocess
from ..products import Finding
from .layer_views import LayerViews, compute_layer_views
from .model_views import ModelViews, compute_views

MAX_EVIDENCE_IMAGES = 4  # per finding, drawn in the report


@dataclass(frozen=True)
class SampleView:
    """What the report needs to draw one sample: the de-normalised input and its ROI."""

    sample_id: str
    image: np.ndarray  # (H, W, 3) float in [0, 1]
    roi: np.ndarray | None  # (H, W) bool


@dataclass(frozen=True)
class Views:
    """The views stage's product."""

    samples: Mapping[str, SampleView]
    finding_maps: Mapping[tuple[str, str], np.ndarray]  # (explainer, sample id) -> map, for evidence images
    model: ModelViews | None
    layers: LayerViews | None


def evidence_ids(findings: Sequence[Finding]) -> list[str]:
    """The samples drawn as each finding's evidence."""
    return [sid for f in findings for sid in f.sample_ids[:MAX_EVIDENCE_IMAGES]]


def finding_maps(probe: ModelProbe, findings: Sequence[Finding]) -> dict[tuple[str, str], np.ndarray]:
    """Maps for the first few evidence samples of each finding that names an explainer."""
    out: dict[tuple[str, str], np.ndarray] = {}
    for f in findings:
        name = f.details.get("explainer") if isinstance(f.details, Mapping) else None
        ids = list(f.sample_ids[:MAX_EVIDENCE_IMAGES])
        if not name or not ids:
            continue
        try:
            aset = probe.attributions(str(name), ids, "predicted")
        except (AuditError, RuntimeError, ValueError, KeyError):
            continue
        for sid, mp in zip(aset.ids, aset.maps, strict=True):
            out[(str(name), sid)] = mp
    return out


def sample_views(probe: ModelProbe, preprocess: Preprocess, ids: Sequence[str]) -> dict[str, SampleView]:
    if not ids:
        return {}
    x = probe.images(ids)
    return {sid: SampleView(sid, preprocess.unnormalize(x[i]), probe.roi(sid)) for i, sid in enumerate(ids)}


def build_views(cfg: AuditConfig, probe: ModelProbe, preprocess: Preprocess, pick_ids: Sequence[str],
                findings: Sequence[Finding], extra_ids: Sequence[str] = ()) -> Views:
    """Every view the report draws. ``extra_ids``: further samples shown (e.g. the comparison's map pairs)."""
    fmaps = finding_maps(probe, findings)
    ids = list(dict.fromkeys([*pick_ids, *evidence_ids(findings), *extra_ids]))
    samples = sample_views(probe, preprocess, ids)
    layers = compute_layer_views(probe, preprocess, list(cfg.explainers.methods), dict(cfg.explainers.options),
                                 list(pick_ids))
    vc = cfg.views
    model = compute_views(probe, list(vc.embeddings), vc.probe_layers, vc.max_samples, vc.probe_samples, cfg.seed) \
        if probe.task.model_views else None
    return Views(samples=samples, finding_maps=fmaps, model=model, layers=layers)
