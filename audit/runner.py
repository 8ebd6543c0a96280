"""run_audit: the stages of one audit, in order, each a function with typed inputs and a typed, frozen product.

load inputs -> load model -> start engine -> predict -> score -> select -> explain -> rules -> compare
-> comparison rules -> completeness (evidence_complete) -> views -> provenance
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd
import torch
from torch import nn

from .compare.stage import Baseline, Comparison, compare_with_baseline
from .concepts.stage import run_concepts
from .config import AuditConfig
from .datachecks.stage import check_data
from .engine import start_engine
from .engine.predict import predict, progress_bars
from .engine.probe import open_probe
from .family.compare import with_baseline
from .family.stage import run_family
from .inputs import check_configured_layers, prepare_inputs, with_model_defaults
from .loading.model import load_model
from .maps.explain import explain_picks
from .products import Finding
from .provenance import build_provenance, now
from .result import AuditResult
from .robustness.stage import run_robustness
from .rules.base import Rule
from .rules.evaluate import evaluate_each, verdict
from .rules.evidence import Evidence
from .rules.family.base import family_needs, per_member
from .rules.family.outcomes import member_outcomes
from .slices.stage import run_slices
from .tasks.base import Task
from .timing import Meter
from .views.stage import build_views


def run_audit(cfg: AuditConfig, baseline: Baseline | None = None, tasks: dict[str, type[Task]] | None = None,
              model: nn.Module | None = None, data: pd.DataFrame | None = None) -> AuditResult:
    """Run one audit end to end. Raises AuditError for bad input; rule crashes become error findings.

    With ``baseline`` (a previous results.json and its maps), comparison-phase rules get the diff against it.
    ``tasks``: extra task classes by name beside the registered ones; ``model`` and ``data``: the in-memory
    module of ``model.python`` and manifest of ``data.dataframe`` (the Python API). ``timings`` records wall and CPU
    seconds and model passes per stage, rule and explainer (timings.json, not results.json)."""
    meter = Meter(progress=progress_bars())
    try:
        return _stages(cfg, baseline, tasks, model, data, meter)
    finally:
        meter.close()  # after an error too: no hook stays on the model, no progress bar stays open


def _stages(cfg: AuditConfig, baseline: Baseline | None, tasks: dict[str, type[Task]] | None,
            model: nn.Module | None, data: pd.DataFrame | None, meter: Meter) -> AuditResult:
    started = now()
    meter.stage("inputs")
    cfg, defaults_notes = with_model_defaults(cfg)
    inputs = prepare_inputs(cfg, tasks, defaults_notes, data)
    # data-level confounders and duplicates and the data fingerprint: one model-free pass, before the model
    meter.stage("data checks")
    datachecks, images_sha256 = check_data(cfg, inputs.heldout, inputs.task.groups())
    meter.stage("model")
    loaded = load_model(cfg, len(inputs.classes), model)
    # forwards outside the engine (the engine's own checks, views, concepts) are counted too
    meter.watch(loaded.module)
    check_configured_layers(cfg, loaded.module)
    engine = start_engine(cfg, loaded, inputs.task)
    engine.meter = meter
    if not engine.counts_passes:
        meter.uncounted(f"the {engine.name} engine's workers run the model: passes and model seconds are not counted")
    torch.manual_seed(cfg.seed)  # torch-side randomness of explainers (e.g. noise tunnels) is seeded per run
    meter.stage("scoring", bar=False)  # draws its own bar
    scored = predict(cfg, inputs.heldout, inputs.preprocess, engine, loaded, images_sha256)
    meter.stage("metrics")
    # e.g. a threshold chosen at a target sensitivity; a segmentation's true masks read
    task, preds = inputs.task.fit(scored.predictions, scored.records, inputs.preprocess)
    inputs, scored, engine.task = replace(inputs, task=task), replace(scored, predictions=preds), task
    metrics = task.metrics(preds, np.random.default_rng(cfg.seed), cfg.data.subgroups)
    picks = task.select(preds, cfg.selection.k, cfg.selection.per_class)
    probe = open_probe(cfg, inputs.preprocess, engine, scored)
    pick_ids = list(picks.all_ids())
    meter.stage("explain", bar=False)  # draws its own bar
    explanations = explain_picks(probe, cfg.explainers.methods, cfg.explainers.target, picks.all_items())
    meter.stage("concepts")
    concepts = run_concepts(cfg, probe)  # TCAV of [concepts] (None when not configured)
    # [robustness]: corruptions, attacks, OOD sets through the engine (None when not configured)
    meter.stage("robustness")
    robustness = run_robustness(cfg, probe, baseline.results if baseline is not None else None)
    meter.stage("slices")
    slices = run_slices(cfg, probe, metrics)  # [slices]: failure slices on the scored features (None when not set)
    meter.stage("family")
    # [[family]]: every member scored through the engine, judged on the rows it was not trained on (None without)
    family = run_family(cfg, inputs.heldout, inputs.preprocess, task, loaded, scored, probe,
                        *family_needs(inputs.pack.rules, task.key_metric, cfg.explainers.methods), images_sha256)
    evidence = Evidence(
        classes=inputs.classes, predictions=preds, metrics=metrics, picks=picks, probe=probe, seed=cfg.seed,
        explainers=tuple(cfg.explainers.methods), skipped=scored.skipped, n_listed=len(inputs.heldout.records),
        concepts=concepts, data=datachecks, input_problems=(inputs.heldout.swapped_size,) if inputs.heldout.swapped_size
        else (), robustness=robustness, family=family, slices=slices,
    )
    main = timed_each(meter, "rules", [r for r in inputs.pack.rules if r.phase == "main"], evidence)
    findings = tuple(f for _, found in main for f in found)
    comparison: Comparison | None = None
    meter.stage("comparison")
    if baseline is not None:
        comparison = compare_with_baseline(baseline, task, preds, metrics, findings, probe, explanations.kept,
                                           cfg.seed, images_sha256)
    evidence = replace(evidence, comparison=comparison.data if comparison else None)
    compared = timed_each(meter, "", [r for r in inputs.pack.rules if r.phase == "comparison"], evidence)
    meter.stage("family rules")
    if family is not None:  # the pack's rules on every member; the family rules count them and compare the members
        family = with_baseline(member_outcomes(per_member(inputs.pack.rules, cfg.family_audit), evidence, main),
                               baseline.results if baseline is not None else None)
        evidence = replace(evidence, family=family)
        family.close()
    # the family rules (after the comparison rules) are reported and read by the completeness check with them
    compared = (*compared, *timed_each(meter, "", [r for r in inputs.pack.rules if r.phase == "family"], evidence))
    # last, the completeness check (evidence_complete) reads what every stage and rule before it produced
    unavailable = {o.name: o.reason for o in explanations.outcomes if o.status != "ok"}
    final = timed_each(meter, "completeness", [r for r in inputs.pack.rules if r.phase == "final"],
                       replace(evidence, unavailable=unavailable, earlier=(*main, *compared)))
    findings = (*findings, *(f for _, found in (*compared, *final) for f in found))
    pair_ids = [sid for pairs in (comparison.map_pairs if comparison else {}).values() for sid, _, _ in pairs]
    meter.stage("views")
    views = build_views(cfg, probe, inputs.preprocess, pick_ids, findings, pair_ids)
    meter.stage("provenance")
    provenance = build_provenance(cfg, inputs, loaded, engine, images_sha256, preds.n, len(scored.skipped), started)
    return AuditResult(config=cfg, inputs=inputs, model=loaded, scored=scored, metrics=metrics, picks=picks,
                       explanations=explanations, findings=findings, comparison=comparison, views=views,
                       verdict=verdict(findings), provenance=provenance, concepts=concepts,
                       datachecks=datachecks, robustness=robustness, family=family, slices=slices,
                       timings=meter.close())


def timed_each(meter: Meter, stage: str, rules: Sequence[Rule], evidence: Evidence
               ) -> tuple[tuple[Rule, tuple[Finding, ...]], ...]:
    """``evaluate_each`` with one timed span per rule; ``stage``: the stage they run in ("": the one running)."""
    if stage:
        meter.stage(stage, total=len(rules), unit="rule")
    out: list[tuple[Rule, tuple[Finding, ...]]] = []
    for rule in rules:
        with meter.span(rule.params.id):
            out.extend(evaluate_each([rule], evidence))
    return tuple(out)
