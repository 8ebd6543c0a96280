"""The report's robustness section: the context ``templates/_robustness.html.j2`` reads (JSON-safe, figures as
data URIs). Only the robustness stage's product and the robustness rules' findings are read."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ...drawing import robustness as charts
from ...drawing.figures import png_uri
from ...drawing.fmt import fmt
from ...result import AuditResult
from ...robustness.result import AdversarialRun, CorruptionRun, OODRun, Value
from ..criteria import metric_label

RULE_KINDS = ("corruption_metric_min", "relative_ce_max", "robust_accuracy_min", "ood_auroc_min")


def _v(v: Value | float | None, ci: tuple[float, float] | None = None) -> str:
    if isinstance(v, Value):
        v, ci = v.value, v.ci
    if v is None or not math.isfinite(v):
        return "—"
    return fmt(v) + (f" ({fmt(ci[0])}–{fmt(ci[1])})" if ci is not None else "")


def _floor(r: AuditResult, clean: float) -> float | None:
    """The floor of the first corruption rule, as a metric value (a relative floor times the clean value)."""
    for f in r.findings:
        if f.kind == "corruption_metric_min" and f.threshold is not None:
            relative = (f.details.get("criterion") or {}).get("unit") == "share of the clean value"
            return f.threshold * clean if relative else f.threshold
    return None


def _corruptions(r: AuditResult, run: CorruptionRun) -> dict[str, Any]:
    label = metric_label(run.metric)[0]
    series = {c: ([x.overall.value for x in run.cells if x.corruption == c],
                  [x.overall.ci for x in run.cells if x.corruption == c]) for c in run.names}
    names = list(run.names)
    k = math.ceil(len(names) / charts.LINES_PER_CHART)  # charts of about equal size, at most LINES_PER_CHART lines
    figs = [charts.severity_figure(label, run.clean.value, run.severities, {n: series[n] for n in part},
                                   _floor(r, run.clean.value))
            for part in (names[i::k] for i in range(k)) if part]
    rows = [{"name": c, "mean": _v(run.mean(c)), "cells": [_v(run.cell(c, s).overall) if run.cell(c, s) else "—"
                                                            for s in run.severities]} for c in names]
    groups = [g for g, _ in run.clean_groups]
    top = max(run.severities)
    per_group = [{"name": c, "cells": [_v(dict(cell.groups).get(g)) for g in groups]}
                 for c in names if (cell := run.cell(c, top)) is not None]
    examples = [{"corruption": e.corruption, "id": e.sample_id, "label": e.label,
                 "cells": [{"uri": png_uri(img), "caption": ("clean" if k == 0 else f"severity {run.severities[k - 1]}")
                            + f": {said}", "alt": f"{e.sample_id} under {e.corruption}"}
                           for k, (img, said) in enumerate(zip(e.images, e.answers, strict=True))]}
                for e in run.examples]
    versus = None
    if run.versus_baseline is not None:
        v = run.versus_baseline
        versus = {"mce": _v(v.mce), "relative_mce": _v(v.relative_mce), "undefined": list(v.undefined),
                  "rows": [{"name": c, "ce": _v(v.ce.get(c)), "relative_ce": _v(v.relative_ce.get(c))} for c in v.ce]}
    return {"metric": label, "n": run.n, "clean": _v(run.clean), "severities": list(run.severities), "figures": figs,
            "rows": rows, "groups": groups, "top": top, "per_group": per_group, "examples": examples,
            "versus": versus, "baseline_note": run.baseline_note, "seconds": f"{run.seconds:.1f}",
            "sources": [{"name": n, "source": s} for n, s in run.sources.items()]}


def _adversarial(run: AdversarialRun) -> dict[str, Any]:
    rows = [{"eps": f"{x.eps:.4g}" + (f" ({x.eps * 255:.3g}/255)" if run.norm == "linf" else ""),
             "accuracy": _v(x.accuracy, x.interval) if x.status == "measured" else "not measurable",
             "attacked": fmt(x.attacked_accuracy), "n": x.n, "clean_correct": x.clean_correct} for x in run.results]
    checks = [{"name": c.name.replace("_", " "), "passed": c.passed, "detail": c.detail}
              for c in (run.masking.checks if run.masking else ())]
    curve = ", ".join(f"eps {e:.4g}: {a:.3f}" for e, a in zip(run.masking.eps, run.masking.accuracy, strict=True)) \
        if run.masking else ""
    examples = []
    for e in run.examples:
        pert, factor = charts.magnified(e.clean, e.adversarial)
        examples.append({"id": e.sample_id, "label": e.label, "eps": f"{e.eps:.4g}", "answer": e.answer,
                         "broken": e.broken, "clean": png_uri(e.clean), "adversarial": png_uri(e.adversarial),
                         "perturbation": png_uri(pert), "factor": f"{factor:.0f}"})
    return {"attack": {"pgd": "PGD", "apgd": "APGD-CE"}.get(run.attack, run.attack), "norm": run.norm,
            "steps": run.steps, "step_size": fmt(run.step_size, 4) if run.step_size else "2.5 eps / steps",
            "restarts": run.restarts, "n": run.n, "status": run.status, "reason": run.reason, "rows": rows,
            "checks": checks, "curve": curve, "n_checks": run.masking.n if run.masking else 0, "examples": examples,
            "seconds": f"{run.seconds:.1f}"}


def _ood(run: OODRun) -> dict[str, Any]:
    detectors = list(dict.fromkeys(x.detector for x in run.results))
    rows = [{"detector": x.detector, "set": x.ood_set, "auroc": _v(x.separation.auroc, x.separation.auroc_interval),
             "fpr95": _v(x.separation.fpr95, x.separation.fpr95_interval)} for x in run.results]
    figs = []
    for d in detectors:
        auroc = {x.ood_set: x.separation.auroc for x in run.results if x.detector == d}
        scores: Mapping[str, Any] = run.scores.get(d, {})
        if scores:
            figs.append({"detector": d, "uri": charts.ood_histogram(d, scores, auroc)})
    return {"status": run.status, "reason": run.reason, "n_id": run.n_id, "n_fit": run.n_fit, "fit": run.fit,
            "sets": [{"name": k, "source": v} for k, v in run.sets.items()], "rows": rows, "figures": figs,
            "skipped": [{"what": k, "why": v} for k, v in run.skipped.items()], "seconds": f"{run.seconds:.1f}"}


def robustness_context(r: AuditResult) -> dict[str, Any] | None:
    """The section's context, or None when [robustness] was not configured."""
    run = r.robustness
    if run is None:
        return None
    return {
        "seed": run.seed, "notes": list(run.notes),
        "corruptions": _corruptions(r, run.corruptions) if run.corruptions is not None else None,
        "adversarial": _adversarial(run.adversarial) if run.adversarial is not None else None,
        "ood": _ood(run.ood) if run.ood is not None else None,
        "findings": [{"id": f.rule, "status": f.status} for f in r.findings if f.kind in RULE_KINDS],
    }
