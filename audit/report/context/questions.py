"""The four questions a reviewer asks of each explainer, answered from the audit's own evidence.

1. Did it add value? — do its maps differ between correct and incorrect predictions?
2. Is it meaningful? — did it pass the model-parameter randomisation test (when the pack ran one)?
3. Is it expected? — how much of its positive mass lies inside the region of interest?
4. What to do differently? — a recommendation that follows from 1–3.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from skimage.metrics import structural_similarity

from ...explainers import registry as explainer_registry
from ...maps.explain import ExplainerOutcome
from ...result import AuditResult


def _norm(m: np.ndarray) -> np.ndarray:
    m = np.abs(np.nan_to_num(m.astype(np.float64)))
    s = m.sum()
    return m / s if s > 0 else m


def _ssim(a: np.ndarray, b: np.ndarray) -> float:
    rng = float(max(a.max(), b.max()) - min(a.min(), b.min()))
    if rng == 0:
        return 1.0
    win = min(7, *a.shape) // 2 * 2 + 1 if min(a.shape) >= 3 else 3
    return float(structural_similarity(a, b, data_range=rng, win_size=max(3, win)))


def _roi_share(e: ExplainerOutcome, r: AuditResult) -> tuple[float, int] | None:
    assert e.maps is not None
    shares = []
    for sid, m in zip(e.maps.ids, e.maps.maps, strict=True):
        view = r.views.samples.get(sid)
        if view is None or view.roi is None:
            continue
        pos = np.clip(np.nan_to_num(m), 0, None)
        total = pos.sum()
        if total > 0:
            shares.append(float(pos[view.roi].sum() / total))
    return (float(np.mean(shares)), len(shares)) if shares else None


def _sanity(r: AuditResult) -> tuple[set[str], set[str], list[str], list[str]]:
    """Explainers flagged not model-sensitive, explainers the sanity rule evaluated, the ids of the pack's
    explanation_sanity rules, and the ids of those that could not be evaluated."""
    flagged: set[str] = set()
    tested: set[str] = set()
    rules: list[str] = []
    errored: list[str] = []
    for f in r.findings:
        d = f.details if isinstance(f.details, Mapping) else {}
        flagged.update(str(n) for n in d.get("not_model_sensitive", []) or [])
        if f.kind == "explanation_sanity":
            rules.append(f.rule)
            if f.status == "error":
                errored.append(f.rule)
            for key in ("explainers", "curves", "per_explainer"):
                v = d.get(key)
                if isinstance(v, Mapping):
                    tested.update(str(k) for k in v)
                elif isinstance(v, list):
                    tested.update(str(k) for k in v if isinstance(k, str))
    return flagged, tested, rules, errored


def _rules_on(r: AuditResult, name: str) -> list[tuple[str, str]]:
    """(rule id, status) of the failing or warning results that read this explainer's maps."""
    out = []
    for f in r.findings:
        d = f.details if isinstance(f.details, Mapping) else {}
        judged = d.get("explainer") if d.get("explainer_judged", True) else ""  # maps shown as information: not read
        used = {str(judged or "")} | {str(x) for x in (d.get("unfaithful") or [])} \
            | {str(x) for x in (d.get("not_model_sensitive") or [])}
        if name in used and f.status in ("fail", "warn", "error"):
            out.append((f.rule, f.status))
    return out


def explainer_questions(r: AuditResult) -> list[dict[str, Any]]:
    flagged, tested, sanity_rules, sanity_errors = _sanity(r)
    pr = r.predictions
    out = []
    for e in r.explanations.outcomes:
        if e.status != "ok" or e.maps is None:
            out.append({"name": e.name, "title": e.title, "value": "—", "meaningful": "—", "expected": "—",
                        "todo": f"Not shown: {e.reason}"})
            continue
        rows = pr.index_of(list(e.maps.ids))
        outcome = r.task.outcome(pr)
        correct = outcome[rows] if outcome is not None else np.ones(len(rows), dtype=bool)
        maps = np.stack([_norm(m) for m in e.maps.maps])
        zero = int(sum(1 for m in e.maps.maps if not np.any(m)))
        if correct.any() and (~correct).any():
            s = _ssim(maps[correct].mean(0), maps[~correct].mean(0))
            value = (f"mean maps of correct and incorrect picks are nearly identical (SSIM {s:.2f}): this method "
                     "does not discriminate right from wrong here") if s > 0.9 else \
                    (f"mean maps of correct and incorrect picks differ (SSIM {s:.2f}): the maps carry information "
                     "about the outcome")
        else:
            value = "not assessed: the picks hold only correct or only incorrect predictions"
        if zero:
            value += f"; {zero} of {len(maps)} maps are all zero"
        if e.name in flagged:
            meaningful = "NO — maps barely change when the model's weights are randomised (not model-sensitive)"
        elif e.name in tested:
            meaningful = "yes — maps change when the weights are randomised (randomisation test passed)"
        elif sanity_errors:
            meaningful = f"not known: the randomisation test ({', '.join(sanity_errors)}) could not be evaluated"
        elif sanity_rules:
            meaningful = (f"not tested: the pack's randomisation test ({', '.join(sanity_rules)}) does not cover "
                          f"this method; add '{e.name}' to its explainers")
        else:
            meaningful = "not tested: the pack has no explanation_sanity (randomisation test) rule"
        cls = explainer_registry().get(e.name)
        attribution = cls.attribution if cls is not None else True  # False: shows the input's content
        share = _roi_share(e, r) if attribution else None
        if not attribution:
            expected = "not applicable: not an attribution of the class score"
        elif share is None:
            expected = "not assessed: no region of interest given"
        else:
            s, n = share
            expected = (f"{s:.0%} of positive mass inside the ROI on average over {n} picks"
                        + (" — mostly outside the object" if s < 0.3 else ""))
        against = _rules_on(r, e.name)
        if e.name in flagged:
            todo = "Do not rely on these maps; prefer a method that passed the randomisation test."
        elif any(s in ("fail", "error") for _, s in against):
            named = ", ".join(f"{rid} ({s})" for rid, s in against)
            todo = (f"Act on {named}: the rule read these maps. Look at its evidence images and fix the data or "
                    "the model before relying on the maps.")
        elif against:
            named = ", ".join(f"{rid} ({s})" for rid, s in against)
            todo = f"Review {named}, which read these maps; read them with the method's limits in mind."
        elif share is not None and share[0] < 0.3:
            todo = "Inspect the outlying maps: the model may use context or a shortcut; check the confounder findings."
        elif "does not discriminate" in value:
            todo = "Use it for localisation only; it says little about why predictions fail."
        else:
            todo = "No rule that read these maps failed or warned; read them with the method's limits in mind."
        out.append({"name": e.name, "title": e.title, "value": value, "meaningful": meaningful,
                    "expected": expected, "todo": todo})
    return out
