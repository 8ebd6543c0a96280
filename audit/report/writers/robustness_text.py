"""What the text exports say of the robustness stage, read from results.json's ``robustness`` (plain sentences for
summary.md and Annex IV point 2(g), Model Card Toolkit performance metrics, and the clause of "what the audit
cannot attest" that names what was measured). Nothing is said of a part that did not run."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

DEFAULT_CLAUSE = "robustness beyond the perturbations the rules applied"


def _f(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else "—"


def _ci(ci: Any) -> str:
    return f" (95 % CI {_f(ci[0])}–{_f(ci[1])})" if isinstance(ci, list) and len(ci) == 2 and None not in ci else ""


def _eps(e: float, norm: str) -> str:
    return f"{e:.4g}" + (f" ({e * 255:.3g}/255)" if norm == "linf" else "")


def _part(results: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    p = (results.get("robustness") or {}).get(name)
    return p if isinstance(p, Mapping) else None


def corruption_line(c: Mapping[str, Any]) -> str:
    cells = [x for x in c.get("cells") or () if isinstance(x.get("value"), (int, float))]
    worst = min(cells, key=lambda x: x["value"]) if cells else None
    sev = c.get("severities") or []
    text = (f"Common corruptions ({', '.join(c.get('names') or [])}; severities {', '.join(map(str, sev))}): "
            f"{c.get('metric')} on {c.get('n')} held-out samples, clean {_f((c.get('clean') or {}).get('value'))}, "
            f"mean under corruption {_f(c.get('mean'))}")
    if worst is not None:
        text += f", lowest {_f(worst['value'])} ({worst['corruption']}, severity {worst['severity']})"
    v = c.get("versus_baseline")
    if isinstance(v, Mapping):
        text += f"; against the baseline mCE {_f(v.get('mce'))}, relative mCE {_f(v.get('relative_mce'))}"
    return text + "."


def adversarial_line(a: Mapping[str, Any]) -> str:
    head = (f"Adversarial robustness ({str(a.get('attack')).upper()} {a.get('norm')}, {a.get('steps')} steps, "
            f"{a.get('restarts')} restart(s), {a.get('n')} samples)")
    if a.get("status") == "not_applicable":
        return f"{head}: not applicable ({a.get('reason')})."
    if a.get("status") != "measured":
        return f"{head}: not measurable ({a.get('reason')}); the attacked accuracy is only an upper bound."
    parts = [f"eps {_eps(r['eps'], str(a.get('norm')))}: robust accuracy {_f(r.get('accuracy'))}{_ci(r.get('ci95'))}"
             for r in a.get("results") or ()]
    return f"{head}, gradient-masking checks passed: " + "; ".join(parts) + "."


def ood_line(o: Mapping[str, Any]) -> str:
    if o.get("status") == "not_applicable":
        return f"Out-of-distribution detection: not applicable ({o.get('reason')})."
    rows = o.get("results") or []
    by_detector: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        by_detector.setdefault(str(r.get("detector")), []).append(r)
    parts = []
    for d, rs in by_detector.items():
        worst = min(rs, key=lambda r: r.get("auroc") if isinstance(r.get("auroc"), (int, float)) else 2.0)
        parts.append(f"{d} lowest AUROC {_f(worst.get('auroc'))}{_ci(worst.get('auroc_ci95'))} ({worst.get('set')})")
    sets = ", ".join(o.get("sets") or {})
    return (f"Out-of-distribution detection ({o.get('n_id')} held-out samples against {sets}): "
            + ("; ".join(parts) or "no detector scored") + ".")


def robustness_lines(results: Mapping[str, Any]) -> list[str]:
    """One sentence per robustness part that ran (none when [robustness] was not configured)."""
    out = []
    c, a, o = (_part(results, k) for k in ("corruptions", "adversarial", "ood"))
    if c is not None:
        out.append(corruption_line(c))
    if a is not None:
        out.append(adversarial_line(a))
    if o is not None:
        out.append(ood_line(o))
    return out


def robustness_metrics(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Model Card Toolkit performance metrics: the key metric's mean under each corruption, robust accuracy at
    each eps (where measurable), each OOD detector's AUROC per set."""
    out: list[dict[str, Any]] = []
    c = _part(results, "corruptions")
    if c is not None:
        for name, v in (c.get("mean_per_corruption") or {}).items():
            if isinstance(v, (int, float)):
                out.append({"type": f"{c.get('metric')} under {name} (mean of severities "
                                    f"{', '.join(map(str, c.get('severities') or []))})",
                            "value": f"{v:.4f}", "slice": f"held-out subset, corrupted (n={c.get('n')})"})
    a = _part(results, "adversarial")
    if a is not None and a.get("status") == "measured":
        for r in a.get("results") or ():
            if isinstance(r.get("accuracy"), (int, float)):
                entry: dict[str, Any] = {"type": f"robust accuracy ({a.get('attack')} {a.get('norm')}, eps "
                                                  f"{_eps(r['eps'], str(a.get('norm')))})",
                                         "value": f"{r['accuracy']:.4f}", "slice": f"held-out subset (n={r.get('n')})"}
                ci = r.get("ci95")
                if isinstance(ci, list) and len(ci) == 2 and None not in ci:
                    entry["confidence_interval"] = {"lower_bound": f"{ci[0]:.4f}", "upper_bound": f"{ci[1]:.4f}"}
                out.append(entry)
    o = _part(results, "ood")
    if o is not None:
        for r in o.get("results") or ():
            if isinstance(r.get("auroc"), (int, float)):
                out.append({"type": f"OOD AUROC ({r.get('detector')})", "value": f"{r['auroc']:.4f}",
                            "slice": f"held-out (n={r.get('n_id')}) vs {r.get('set')} (n={r.get('n_ood')})"})
    return out


def robustness_clause(results: Mapping[str, Any] | None) -> str:
    """The robustness clause of "what the audit cannot attest": what lies beyond what was measured."""
    measured = []
    c = _part(results or {}, "corruptions")
    if c is not None:
        sev = c.get("severities") or []
        measured.append(f"the corruptions measured ({', '.join(c.get('names') or [])} at severities "
                        f"{min(sev, default=0)}–{max(sev, default=0)})")
    a = _part(results or {}, "adversarial")
    if a is not None and a.get("status") == "measured":
        top = max((r["eps"] for r in a.get("results") or ()), default=0.0)
        measured.append(f"{str(a.get('attack')).upper()} {a.get('norm')} attacks up to eps "
                        f"{_eps(top, str(a.get('norm')))}")
    o = _part(results or {}, "ood")
    if o is not None and o.get("status") == "measured":
        measured.append(f"the OOD sets scored ({', '.join(o.get('sets') or {})})")
    if not measured:
        return DEFAULT_CLAUSE
    return "robustness beyond the perturbations the rules applied and " + ", ".join(measured)
