"""summary.md: verdict, failing rules and key metrics, short enough for a pull-request comment."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _f(v: Any) -> str:
    return "—" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))


def build_summary(results: Mapping[str, Any], headline: str) -> str:
    """``headline``: the task's one line of key figures."""
    icon = "✅" if results["verdict"] == "pass" else "❌"
    lines = [f"## {icon} model-audit `{results['name']}`: **{results['verdict'].upper()}**", ""]
    bad = [r for r in results["rules"] if r["status"] in ("fail", "error", "warn")]
    if bad:
        lines += ["| rule | status | measured | threshold | message |", "|---|---|---|---|---|"]
        for r in bad:
            msg = r["message"].replace("|", "\\|").replace("\n", " ")
            lines.append(f"| `{r['id']}` | {r['status']} | {_f(r['value'])} | {_f(r['threshold'])} | {msg} |")
    else:
        lines.append("Every rule passed.")
    lines += ["", headline]
    comp = results.get("comparison")
    if comp:
        lines += ["", "Changes since baseline:"]
        for name, d in comp.get("metrics", {}).items():
            lines.append(f"- {name}: {_f(d.get('baseline'))} → {_f(d.get('candidate'))} (Δ {_f(d.get('delta'))})")
        flips = comp.get("flips")
        if flips:
            lines.append(f"- flips: {flips['to_wrong']} right → wrong, {flips['to_right']} wrong → right")
        for name, e in (comp.get("explanations") or {}).items():
            if e.get("status") == "ok":
                lines.append(f"- {name} maps of {e['n_compared']} shared picks: median Spearman "
                             f"{_f(e['spearman']['median'])}, median SSIM {_f(e['ssim']['median'])}")
    return "\n".join(lines) + "\n"
