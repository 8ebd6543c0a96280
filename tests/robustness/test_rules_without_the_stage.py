"""A robustness or slice rule whose stage part did not run (no [robustness] table or part, no [slices]) is an error
naming the table to add, never a pass; a slice rule is a warning unless the pack says otherwise."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from audit.rules import registry

EXAMPLES = {"corruption_metric_min": "[robustness.corruptions]", "relative_ce_max": "[robustness.corruptions]",
            "robust_accuracy_min": "[robustness.adversarial]", "ood_auroc_min": "[robustness.ood]",
            "slice_gap_max": "[slices]"}


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
@pytest.mark.parametrize("configured", [False, True])
def test_a_part_that_did_not_run_is_an_error_naming_its_table(kind: str, configured: bool) -> None:
    cls = registry()[kind]
    rule = cls(cls.Params(id="r", kind=kind, **cls.examples[0]))
    # configured: [robustness] ran, but without the part this rule reads (a stage with every part None)
    robustness = SimpleNamespace(corruptions=None, adversarial=None, ood=None) if configured else None
    (f,) = rule.check(SimpleNamespace(robustness=robustness, slices=None))
    assert f.status == "error" and EXAMPLES[kind] in f.message
    assert f.severity == ("warning" if kind == "slice_gap_max" else "error")
