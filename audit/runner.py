"""run_audit: chain the stages and return an AuditResult (plain data, no rendering)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from . import __version__, cache
from .cache import AttributionStore
from .compare_maps import compare_explanations
from .compute import resolve_compute
from .config import AuditConfig
from .errors import AuditError, ExplainerError
from .evidence import Evidence
from .explainers import registry as explainer_registry
from .loading.data import HeldOutSet, Preprocess, load_heldout, make_preprocess
from .loading.model import LoadedModel, load_model, resolve_device, sha256_file
from .mapstore import StoredMaps, from_attributions
from .predict import check_classes_present, predict
from .probe import ModelProbe
from .provenance import data_fingerprint, git_state, package_versions
from .rules.engine import evaluate, verdict
from .rules.pack import RulePack, find_pack, load_pack
from .scoring import Metrics, score
from .selection import select_samples
from .types import AttributionSet, Finding, Picks, Predictions, SkippedSample

log = logging.getLogger(__name__)

MAX_EVIDENCE_IMAGES = 4  # per finding, drawn in the report


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
class SampleView:
    """What the report needs to draw one sample: the de-normalised input and its ROI."""

    sample_id: str
    image: np.ndarray  # (H, W, 3) float in [0, 1]
    roi: np.ndarray | None  # (H, W) bool


@dataclass(frozen=True)
class AuditResult:
    config: AuditConfig
    classes: tuple[str, ...]
    model_source: str
    pickled_model: bool
    pack: RulePack
    predictions: Predictions
    metrics: Metrics
    picks: Picks
    explanations: tuple[ExplainerOutcome, ...]
    findings: tuple[Finding, ...]
    finding_maps: Mapping[tuple[str, str], np.ndarray]  # (explainer, sample id) -> map, for evidence images
    views: Mapping[str, SampleView]
    verdict: str
    skipped: tuple[SkippedSample, ...]
    provenance: Mapping[str, Any]
    n_listed: int = 0
    extras: Mapping[str, Any] = field(default_factory=dict)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _progress() -> bool:
    return sys.stderr.isatty()


def _explain_picks(probe: ModelProbe, cfg: AuditConfig, ids: list[str]) -> tuple[ExplainerOutcome, ...]:
    reg = explainer_registry()
    out = []
    for name in tqdm(cfg.explainers.methods, desc="explaining", unit="method", disable=not _progress(),
                     leave=False):
        cls = reg[name]
        try:
            maps = probe.attributions(name, ids, cfg.explainers.target)
            if not np.isfinite(maps.maps).all():
                raise ExplainerError("the maps contain NaN or infinite values")
            out.append(ExplainerOutcome(name, cls.title, cls.legend, cls.signed, "ok", maps=maps))
        except (ExplainerError, RuntimeError, ValueError) as e:
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            log.warning("explainer %s unavailable: %s", name, reason)
            out.append(ExplainerOutcome(name, cls.title, cls.legend, cls.signed, "unavailable", reason=reason))
    return tuple(out)


def _finding_material(probe: ModelProbe, findings: tuple[Finding, ...]) -> dict[tuple[str, str], np.ndarray]:
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


def _views(probe: ModelProbe, preprocess: Preprocess, ids: list[str]) -> dict[str, SampleView]:
    if not ids:
        return {}
    x = probe.images(ids)
    return {sid: SampleView(sid, preprocess.unnormalize(x[i]), probe.roi(sid)) for i, sid in enumerate(ids)}


def _attribution_stores(cfg: AuditConfig, prediction_key: str) -> Callable[[str], AttributionStore]:
    """Per explainer, the disk cache of its maps for this model, data, preprocessing and explainer settings."""
    from .cache import attribution_key

    stores: dict[str, AttributionStore] = {}

    def store(name: str) -> AttributionStore:
        if name not in stores:
            key = attribution_key(prediction_key, name, cfg.explainers.options.get(name), cfg.seed,
                                  cfg.explainers.batch_size)
            stores[name] = AttributionStore(cfg.resolve(cfg.cache.dir), key)
        return stores[name]

    return store


def validate_setup(cfg: AuditConfig) -> tuple[HeldOutSet, RulePack]:
    """Everything that can be checked before the model runs: data listing, rule pack, explainer names."""
    heldout = load_heldout(cfg)
    pack = load_pack(find_pack(cfg.rules.pack, cfg.base_dir))
    reg = explainer_registry()
    from .explainers import build_explainer

    for name in cfg.explainers.methods:
        build_explainer(name, cfg.explainers.options.get(name))  # ConfigError names unknown ones
    unknown_opts = set(cfg.explainers.options) - set(reg)
    if unknown_opts:
        from .errors import ConfigError

        raise ConfigError(f"explainers.options: unknown explainer(s) {', '.join(sorted(unknown_opts))}")
    if cfg.data.image_size is None:
        from .errors import ConfigError

        raise ConfigError("data.image_size: required (the model's input height and width)")
    return heldout, pack


def _kept_maps(probe: ModelProbe, explanations: tuple[ExplainerOutcome, ...]) -> dict[str, StoredMaps]:
    """The report's maps with labels and ROI shares, as written to maps.npz and compared with a baseline."""
    out = {}
    for o in explanations:
        if o.maps is not None:
            labels = probe.predictions.labels[probe.predictions.index_of(list(o.maps.ids))]
            out[o.name] = from_attributions(o.maps, labels, probe.roi)
    return out


def _maps_for_comparison(probe: ModelProbe, kept: Mapping[str, StoredMaps],
                         baseline_maps: Mapping[str, StoredMaps]) -> dict[str, StoredMaps]:
    """The candidate's maps, plus candidate maps for every baseline pick it lacks, explained for the class the
    baseline explained (so that each baseline pick in the held-out set is compared like for like)."""
    out = dict(kept)
    in_set = set(probe.predictions.ids.tolist())
    for name, cand in kept.items():
        base = baseline_maps.get(name)
        if base is None:
            continue
        have = cand.index()
        missing = [(sid, int(t)) for sid, t in zip(base.ids, base.targets, strict=True)
                   if sid in in_set and (sid, int(t)) not in have]
        if not missing:
            continue
        try:
            extra = probe.attributions(name, [m[0] for m in missing], np.array([m[1] for m in missing]))
        except (AuditError, RuntimeError, ValueError) as e:
            log.warning("maps of %s for the baseline's classes unavailable: %s", name, e)
            continue
        labels = probe.predictions.labels[probe.predictions.index_of(list(extra.ids))]
        add = from_attributions(extra, labels, probe.roi)
        out[name] = StoredMaps(
            explainer=name, ids=cand.ids + add.ids, targets=np.concatenate([cand.targets, add.targets]),
            labels=np.concatenate([cand.labels, add.labels]), maps=np.concatenate([cand.maps, add.maps]),
            roi_share=np.concatenate([cand.roi_share, add.roi_share]), signed=cand.signed)
    return out


def _least_similar_pairs(summary: Mapping[str, Any], base: Mapping[str, StoredMaps],
                         cand: Mapping[str, StoredMaps], classes: tuple[str, ...], n: int = 2
                         ) -> dict[str, list[tuple[str, np.ndarray, np.ndarray]]]:
    """(sample id, baseline map, candidate map) of the ``n`` least similar samples per explainer, drawn in the
    report's "Changes since baseline"."""
    out: dict[str, list[tuple[str, np.ndarray, np.ndarray]]] = {}
    for name, e in summary.items():
        bi, ci = base[name].index(), cand[name].index()
        rows = []
        for r in e.get("lowest", [])[:n]:
            key = (r["id"], classes.index(r["target"]))
            rows.append((r["id"], base[name].maps[bi[key]], cand[name].maps[ci[key]]))
        if rows:
            out[name] = rows
    return out


def _comparison(baseline: Mapping[str, Any], preds: Predictions, metrics: Metrics, classes: tuple[str, ...],
                findings: tuple[Finding, ...], unpaired: bool, seed: int, images_sha256: str) -> dict[str, Any]:
    from .compare import candidate_view, compare_results

    flat = {
        "accuracy": metrics.accuracy, "balanced_accuracy": metrics.balanced_accuracy, "macro_f1": metrics.macro_f1,
        "weighted_f1": metrics.weighted_f1, "ece": metrics.calibration.ece, "nll": metrics.nll,
        "brier": metrics.brier,
        "per_class": [{"class": c.name, "precision": c.precision, "recall": c.recall, "f1": c.f1,
                       "support": c.support} for c in metrics.per_class],
    }
    rules = [{"id": f.rule, "status": f.status} for f in findings]
    cand = candidate_view(preds.ids, preds.labels, preds.preds, preds.confidence, flat, list(classes), rules,
                          images_sha256)
    return compare_results(baseline, cand, unpaired=unpaired, seed=seed)


def run_audit(cfg: AuditConfig, baseline: Mapping[str, Any] | None = None, unpaired: bool = False,
              baseline_maps: Mapping[str, StoredMaps] | None = None) -> AuditResult:
    """Run one audit end to end. Raises AuditError for bad input; rule crashes become error findings.

    With ``baseline`` (a previous results.json), comparison-phase rules get the diff against it; with
    ``baseline_maps`` (its maps.npz) the diff also compares the explanations of shared picks."""
    started = _now()
    heldout, pack = validate_setup(cfg)
    loaded: LoadedModel = load_model(cfg, len(heldout.classes))
    device = resolve_device(cfg.device)
    model = loaded.module.to(device)
    compute = resolve_compute(device, cfg.compute.autocast, cfg.compute.channels_last, model,
                              (cfg.data.channels, *cfg.data.image_size) if cfg.data.image_size else None)
    preprocess = make_preprocess(cfg.data)
    torch.manual_seed(cfg.seed)  # torch-side randomness of explainers (e.g. noise tunnels) is seeded per run
    images_sha256 = data_fingerprint(heldout.records, heldout.root)
    out = None
    cache_key = ""
    if cfg.cache.enabled:
        cache_key = cache.prediction_key(cache.model_digest(model), images_sha256,
                                         {**cfg.data.model_dump(mode="json"), "compute": compute.describe()}, device)
        out = cache.load(cfg.resolve(cfg.cache.dir), cache_key)
    cached = out is not None
    resumed_at = 0
    if out is None:
        folder = cfg.resolve(cfg.cache.dir)
        progress = cache.load_progress(folder, cache_key) if cfg.cache.enabled else None
        resumed_at = progress.next_row if progress is not None else 0
        out = predict(model, heldout, preprocess, device, cfg.data.batch_size, cfg.data.num_workers,
                      skip_bad=cfg.data.on_bad_image == "skip", progress=_progress(), compute=compute,
                      resume=progress,
                      checkpoint=(lambda p: cache.save_progress(folder, cache_key, p)) if cfg.cache.enabled else None,
                      checkpoint_seconds=cfg.cache.checkpoint_seconds)
        if cfg.cache.enabled:
            cache.save(folder, cache_key, out)
            cache.clear_progress(folder, cache_key)
    preds = out.predictions
    source = str(heldout.manifest or heldout.root)
    check_classes_present(preds, heldout.classes, source)
    rng = np.random.default_rng(cfg.seed)
    metrics = score(preds, heldout.classes, rng, tuple(cfg.data.subgroups))
    picks = select_samples(preds, heldout.classes, cfg.selection.k, cfg.selection.per_class)
    kept = [heldout.records[i] for i in out.kept_rows]
    mean = (out.input_sum / preds.n).float() if out.input_sum is not None else None
    probe = ModelProbe(
        model=model, records=kept, preprocess=preprocess, predictions=preds, device=device, seed=cfg.seed,
        batch_size=cfg.data.batch_size, explain_batch_size=cfg.explainers.batch_size,
        explainer_options=dict(cfg.explainers.options), dataset_mean=mean,
        attribution_store=_attribution_stores(cfg, cache_key) if cfg.cache.enabled else None, compute=compute,
    )
    pick_ids = list(picks.all_ids())
    explanations = _explain_picks(probe, cfg, pick_ids)
    kept_maps = _kept_maps(probe, explanations)
    evidence = Evidence(
        classes=heldout.classes, predictions=preds, metrics=metrics, picks=picks, probe=probe, seed=cfg.seed,
        explainers=tuple(cfg.explainers.methods), skipped=out.skipped, n_listed=len(heldout.records),
    )
    main_rules = [r for r in pack.rules if r.phase == "main"]
    comparison_rules = [r for r in pack.rules if r.phase == "comparison"]
    findings = evaluate(main_rules, evidence)
    comparison = None
    map_pairs: dict[str, list[tuple[str, np.ndarray, np.ndarray]]] = {}
    if baseline is not None:
        comparison = _comparison(baseline, preds, metrics, heldout.classes, findings, unpaired, cfg.seed,
                                 images_sha256)
        if baseline_maps and comparison.get("paired"):
            cand_maps = _maps_for_comparison(probe, kept_maps, baseline_maps)
            comparison["explanations"] = compare_explanations(baseline_maps, cand_maps, heldout.classes)
            map_pairs = _least_similar_pairs(comparison["explanations"], baseline_maps, cand_maps, heldout.classes)
        evidence = replace(evidence, extras={**evidence.extras, "comparison": comparison})
    findings = findings + evaluate(comparison_rules, evidence)
    finding_maps = _finding_material(probe, findings)
    evidence_ids = [sid for f in findings for sid in f.sample_ids[:MAX_EVIDENCE_IMAGES]]
    pair_ids = [sid for pairs in map_pairs.values() for sid, _, _ in pairs]
    view_ids = list(dict.fromkeys(pick_ids + evidence_ids + pair_ids))
    views = _views(probe, preprocess, view_ids)
    from .views import compute_views

    vc = cfg.views
    from .layer_views import compute_layer_views

    layer_views = compute_layer_views(probe, preprocess, list(cfg.explainers.methods), dict(cfg.explainers.options),
                                      pick_ids)
    model_views = compute_views(probe, list(vc.embeddings), vc.probe_layers, vc.max_samples, vc.probe_samples,
                                cfg.seed)
    provenance = {
        "tool": {"name": "model-audit", "version": __version__},
        "model": {
            "source": loaded.source,
            "files": [{"path": str(p), "sha256": sha256_file(p)} for p in loaded.files],
            "sha256": sha256_file(loaded.files[0]) if loaded.files else None,
            "allow_pickle": loaded.pickled,
            "name": cfg.model.name,
            "version": cfg.model.version,
        },
        "data": {
            "source": source,
            "manifest_sha256": sha256_file(heldout.manifest) if heldout.manifest else None,
            "images_sha256": images_sha256,
            "n_listed": len(heldout.records),
            "n_scored": preds.n,
            "n_skipped": len(out.skipped),
        },
        "rule_pack": {"name": pack.name, "path": str(pack.path), "sha256": sha256_file(pack.path),
                      "extends": [{"path": str(f), "sha256": sha256_file(f)} for f in pack.files[1:]]},
        "config": cfg.to_jsonable(),
        "model_card": cfg.model_card.model_dump(),
        "versions": package_versions(),
        "seed": cfg.seed,
        "device": str(device),
        "compute": compute.describe(),
        "git": git_state(cfg.base_dir),
        "started": started,
        "finished": _now(),
    }
    return AuditResult(
        config=cfg, classes=heldout.classes, model_source=loaded.source, pickled_model=loaded.pickled, pack=pack,
        predictions=preds, metrics=metrics, picks=picks, explanations=explanations, findings=findings,
        finding_maps=finding_maps, views=views, verdict=verdict(findings), skipped=out.skipped,
        provenance=provenance, n_listed=len(heldout.records),
        extras={"model_views": model_views, "layer_views": layer_views, "predictions_from_cache": cached,
                "scoring_resumed_at": resumed_at,
                "kept_maps": kept_maps, "map_pairs": map_pairs, **({"comparison": comparison} if comparison is not None else {})},
    )
