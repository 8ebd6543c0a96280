"""What summary.md says of the slice stage, read from results.json's ``slices`` (nothing when [slices] was not
configured)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _f(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, (int, float)) and not isinstance(v, bool) else "—"


def slices_lines(results: Mapping[str, Any]) -> list[str]:
    """One sentence for the stage and one per reported slice."""
    s = results.get("slices")
    if not isinstance(s, Mapping):
        return []
    if s.get("status") != "measured":
        return [f"Slice discovery: not applicable ({s.get('reason')})."]
    tried = list(s.get("slices") or ())
    reported = [x for x in tried if x.get("significant")]
    what = f"{s.get('metric')}" + (f" of label {s['label']}" if s.get("label") else "")
    out = [(f"Slice discovery on the model's features: {len(tried)} slice(s) of at least {s.get('min_size')} tested "
            f"samples tried, {len(reported)} significantly worse than the rest (corrected, alpha {s.get('alpha')}); "
            f"overall {what} {_f(s.get('overall'))} on {s.get('n_confirmation')} tested samples.")]
    out += [f"{x['name']}: {what} {_f(x.get('metric'))} on {x.get('n')} tested samples ({x.get('size')} in all), "
            f"{_f(x.get('below_overall'))} below the overall, corrected p {x.get('p_adjusted'):.2g}"
            + (f"; best told apart by {x['columns'][0]['column']} (AUC {_f(x['columns'][0]['auc'])})"
               if x.get("columns") else "") + "." for x in reported]
    return out
