"""A rule that shows an explainer's maps as information (confounder_region's attribution share) must not be read as
judging that explainer: the headline does not name the maps and the "four questions" table does not count the
rule against the explainer; a rule that judges the maps (roi_attribution) still does both."""

from __future__ import annotations

from types import SimpleNamespace

from audit.products import Finding
from audit.report.context.questions import _rules_on
from audit.report.criteria import headline

CRIT = {"name": "excess score change", "unit": "0–1", "direction": "above"}


def finding(rule: str, **details) -> Finding:
    return Finding(rule=rule, kind="k", severity="error", status="fail", message="m", value=0.3, threshold=0.1,
                   details={"worst_class": "seven", **details})


def test_information_only_maps_are_not_named_or_counted() -> None:
    region = finding("region-sweep", explainer="gradcam", explainer_judged=False, worst_region="top_bottom_wide",
                     regions={"top_bottom_wide": {"label": "top and bottom bands 12 px (letterbox)"}})
    roi = finding("roi-attribution", explainer="gradcam")
    line = headline({"status": "fail", "criterion": CRIT, "value": 0.3, "threshold": 0.1, "details": region.details})
    assert "gradcam" not in line and "top and bottom bands 12 px (letterbox)" in line and "'seven'" in line
    assert "gradcam maps" in headline({"status": "fail", "criterion": CRIT, "value": 0.3, "threshold": 0.1,
                                       "details": roi.details})
    assert _rules_on(SimpleNamespace(findings=[region, roi]), "gradcam") == [("roi-attribution", "fail")]
