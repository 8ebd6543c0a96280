"""The report's slices section: the context ``templates/_slices.html.j2`` reads (JSON-safe, typical members as PNG
data URIs). Only the slice stage's product and the slice rules' findings are read."""

from __future__ import annotations

from typing import Any

from ...drawing.figures import png_uri
from ...result import AuditResult
from ...slices.result import FoundSlice

RULE_KINDS = ("slice_gap_max",)


def _f(v: float) -> str:
    return f"{v:.3f}"


def _slice(s: FoundSlice) -> dict[str, Any]:
    return {
        "name": s.name, "n": s.n, "size": len(s.member_ids), "metric": _f(s.metric),
        "ci": f"{_f(s.ci95[0])}–{_f(s.ci95[1])}", "rest": _f(s.rest_metric), "below": _f(s.below_overall),
        "p": f"{s.p_adjusted:.2g}", "significant": s.significant,
        "columns": [{"column": c.column, "auc": _f(c.auc), "ci": f"{_f(c.ci95[0])}–{_f(c.ci95[1])}"}
                    for c in s.columns[:3]],
        "images": [{"uri": png_uri(img), "id": sid} for img, sid in zip(s.images, s.typical_ids, strict=True)],
    }


def slices_context(r: AuditResult) -> dict[str, Any] | None:
    """The section's context, or None when [slices] was not configured."""
    run = r.slices
    if run is None:
        return None
    findings = [{"id": f.rule, "status": f.status} for f in r.findings if f.kind in RULE_KINDS]
    if run.status == "not_applicable":
        return {"status": run.status, "reason": run.reason, "findings": findings}
    return {
        "status": run.status, "method": run.reason, "metric": run.metric, "label": run.label, "n": run.n,
        "n_confirmation": run.n_confirmation, "overall": _f(run.overall), "seed": run.seed,
        "left_out": run.left_out, "embedding": run.embedding, "tried": len(run.slices), "findings": findings,
        "slices": [_slice(s) for s in run.slices if s.images],
        "reported": len(run.reported),
    }
