"""Which kinds of shortcut the rules of a pack can catch, and which went unchecked in an audit.

A pass means "no shortcut of the kinds these rules test was found", never "no shortcut exists". Each rule kind
declares the kinds it can catch (``Rule.shortcuts``) and each rule which of them it covers as configured
(``Rule.shortcut_classes``); a kind is unchecked when no rule of the pack covers it, or when every rule that does
could not apply (``not_applicable``: no ROI, no metadata, single-channel input) or could not be evaluated
(``error``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ..products import Finding
from .base import Rule, ShortcutClass


def shortcut_classes(kinds: Iterable[type[Rule]]) -> dict[str, str]:
    """Every shortcut class the rule kinds declare (key -> description), in the order they first appear."""
    out: dict[str, str] = {}
    for cls in kinds:
        for c in cls.shortcuts:
            out.setdefault(c.key, c.description)
    return out


def coverage(rules: Sequence[Rule], findings: Sequence[Finding], kinds: Iterable[type[Rule]]
             ) -> list[dict[str, Any]]:
    """One entry per shortcut class of ``kinds`` (the registered rule kinds): the rules that cover it with their
    statuses, and whether it was checked."""
    status = {f.rule: f.status for f in findings}
    out = []
    for key, words in shortcut_classes(kinds).items():
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


__all__ = ["ShortcutClass", "coverage", "shortcut_classes"]
