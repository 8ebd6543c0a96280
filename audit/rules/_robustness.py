"""What the robustness rule kinds share: reading one part of the [robustness] stage's product, or why it is
missing (a configuration the user must fix: an ``error`` result, never a pass)."""

from __future__ import annotations

from typing import Any

from .evidence import Evidence

HINT = {"corruptions": "[robustness.corruptions] (an empty table runs the 15 ImageNet-C corruptions at 5 severities)",
        "adversarial": "[robustness.adversarial] (an empty table runs PGD L-inf at eps 1/255, 2/255, 4/255)",
        "ood": "[robustness.ood] (an empty table scores the built-in far-OOD sets)"}


class Missing(Exception):
    """The part a rule reads was not measured; the message says what to configure."""


def part(evidence: Evidence, name: str) -> Any:
    """The stage's ``name`` part ("corruptions", "adversarial", "ood"); Missing when it did not run."""
    run = evidence.robustness
    found = getattr(run, name, None) if run is not None else None
    if found is None:
        raise Missing(f"no {name} results: the config has no {HINT[name]}")
    return found


def fmt_ci(ci: tuple[float, float] | None) -> str:
    return f" (95 % CI {ci[0]:.3f}–{ci[1]:.3f})" if ci is not None else ""
