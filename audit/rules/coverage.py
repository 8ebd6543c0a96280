"""Which kinds of shortcut the rules of a pack can catch, and which went unchecked in an audit.

A pass means "no shortcut of the kinds these rules test was found", never "no shortcut exists". Each rule says
which kinds it covers (``Rule.shortcut_classes``); a kind is unchecked when no rule of the pack covers it, or
when every rule that does could not apply (``not_applicable``: no ROI, no metadata, single-channel input) or
could not be evaluated (``error``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..products import Finding
from .base import Rule

SHORTCUT_CLASSES: dict[str, str] = {
    "fixed_position": "marks at a fixed place: corner tags, rulers, frames, letterbox or pillarbox bars",
    "background": "content around the object: burnt-in text and markers at any position, background texture",
    "colour": "colour and intensity statistics: a tint, a brightness or contrast shift",
    "acquisition": "acquisition quality: blur, compression, noise, fine texture",
    "metadata": "a site, scanner or other attribute listed in the manifest",
    "data_property": "an image property or metadata column that alone predicts the label (data level)",
}


def coverage(rules: Sequence[Rule], findings: Sequence[Finding]) -> list[dict[str, Any]]:
    """One entry per shortcut class: the rules that cover it with their statuses, and whether it was checked."""
    status = {f.rule: f.status for f in findings}
    out = []
    for key, words in SHORTCUT_CLASSES.items():
        covering = [r for r in rules if key in r.shortcut_classes()]
        entries = [{"rule": r.params.id, "kind": r.kind, "status": status.get(r.params.id, "not run")}
                   for r in covering]
        checked = [e for e in entries if e["status"] in ("pass", "warn", "fail")]
        if not covering:
            why = "no rule in the pack tests it"
        elif not checked:
            why = "; ".join(f"{e['rule']}: {e['status']}" for e in entries)
        else:
            why = ""
        out.append({"class": key, "description": words, "rules": entries, "checked": bool(checked),
                    "why_unchecked": why})
    return out
